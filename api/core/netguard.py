"""Where the service may connect when a caller names the URL: the PBX webhook's recording URL.

Whoever holds the webhook secret chooses what the worker fetches. Left open, that is a way into
the network behind the service (server-side request forgery): the database, broker and admin
ports on loopback, the office network, a cloud's metadata service at 169.254.169.254 with the
machine's credentials. So a recording URL is http or https and leads to public addresses only,
unless ``CALLQA_WEBHOOK_ALLOWED_NETWORKS`` names the networks (a PBX on the office network)::

    refused                                       what is there
    loopback 127/8, ::1                           the service's own ports
    unspecified 0.0.0.0, ::                       the same, on Linux
    private 10/8, 172.16/12, 192.168/16, fc00::/7 the networks behind the service
    link-local 169.254/16, fe80::/10              cloud metadata (credentials), the local link
    carrier-grade NAT 100.64/10                   the provider's network
    multicast, reserved, site-local fec0::/10,    nothing a PBX serves recordings from
    anything else the standard library does not
    call global (documentation, benchmarking)

An IPv6 address that carries an IPv4 one (``::ffff:a.b.c.d``, ``::a.b.c.d``, NAT64
``64:ff9b::/96``, 6to4 ``2002::/16``) reaches that IPv4 address, and is judged as it.

The name is looked up once, every address checked, and the connection made to an address that
passed: nothing looks the name up again, so a name that answers the check with a public address
and the connection with a private one (DNS rebinding) gains nothing. The request keeps the name
in its Host header and, over TLS, in SNI and the certificate check. Redirects pass through the same
transport, so every hop is checked alike; httpx follows at most ``MAX_REDIRECTS``. Proxies from the
environment are not used: a proxy would make the connection, out of this check's sight.

The webhook checks the URL when the call comes (an early, clear 422); the worker's check when it
downloads is the one that counts, as a name can point elsewhere by then.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

import httpx

from api.core.errors import RecordingUrlNotAllowed

IPAddress = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

MAX_REDIRECTS = 5
SCHEMES = ("http", "https")

_CARRIER_GRADE_NAT = ip_network("100.64.0.0/10")
_NAT64 = ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ip_network("::/96")
_ADVICE = ("recordings are downloaded from public addresses only; give the PBX's public address, or add its network "
           "to CALLQA_WEBHOOK_ALLOWED_NETWORKS")


def refusal(ip: IPAddress) -> str | None:
    """Why the service does not connect to ``ip`` on a caller's behalf; None when it is public."""
    carried = _carried_ipv4(ip)
    if carried is not None:
        reason = refusal(carried)
        return f"an IPv6 form of {carried}, {reason}" if reason else None
    if ip.is_unspecified:
        return "the unspecified address (this machine)"
    if ip.is_loopback:
        return "a loopback address (this machine)"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if ip in _CARRIER_GRADE_NAT:
        return "a carrier-grade NAT address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved or (isinstance(ip, IPv6Address) and ip.is_site_local):
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "not a public address"
    return None


def _carried_ipv4(ip: IPAddress) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, when it carries one."""
    if not isinstance(ip, IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):  # not :: and ::1, judged as IPv6
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _allowed(ip: IPAddress, allowed: Sequence[Network]) -> bool:
    carried = _carried_ipv4(ip)
    return any(ip in net or (carried is not None and carried in net) for net in allowed)


def addresses(host: str, port: int, *, allowed: Sequence[Network] = ()) -> list[IPAddress]:
    """The addresses ``host`` (a name or an address) stands for that the service may connect to, in
    the resolver's order. Raises RecordingUrlNotAllowed when there is none, socket.gaierror when the
    name does not resolve."""
    literal = _literal(host)
    if literal is not None:
        found = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except UnicodeError as e:  # a label the resolver cannot encode ("a..b")
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not a host name") from e
        found = list(dict.fromkeys(ip_address(info[4][0]) for info in infos))
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} has no address")
    usable = [ip for ip in found if refusal(ip) is None or _allowed(ip, allowed)]
    if not usable:
        ip = found[0]
        where = f"{host} is" if literal is not None else f"{host} resolves to {ip},"
        raise RecordingUrlNotAllowed(f"{where} {refusal(ip)}: {_ADVICE}")
    return usable


def _literal(host: str) -> IPAddress | None:
    try:
        return ip_address(host)
    except ValueError:
        return None


def check_url(url: str, *, allowed: Sequence[Network] = ()) -> None:
    """Refuse a URL the worker would refuse to download from, as far as can be told now: not http(s),
    or a host that is, or resolves to, no allowed address. A name that does not resolve now passes:
    the worker tries again when it downloads."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as e:
        raise RecordingUrlNotAllowed(f"the recording URL cannot be fetched: {e}", code="bad_recording_url") from None
    _check_scheme(parsed)
    try:
        addresses(parsed.host, _port(parsed), allowed=allowed)
    except RecordingUrlNotAllowed as e:
        e.message = f"the recording URL's host {e.message}"
        raise
    except socket.gaierror:
        pass


def _check_scheme(url: httpx.URL) -> None:
    if url.scheme not in SCHEMES:
        raise RecordingUrlNotAllowed(f"the recording URL must be http or https, not {url.scheme or 'none'}: {url}")


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport that connects only to addresses :func:`addresses` lets through, by address,
    trying them in order as a browser would. Raises RecordingUrlNotAllowed before connecting anywhere
    else; a name that does not resolve is an httpx.ConnectError (worth another try later)."""

    def __init__(self, *, allowed: Sequence[Network] = (), **options: Any) -> None:
        super().__init__(**options)
        self.allowed = tuple(allowed)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        _check_scheme(url)
        try:
            vetted = addresses(url.host, _port(url), allowed=self.allowed)
        except RecordingUrlNotAllowed as e:  # the URL given, or where a redirect led
            e.message = f"not downloading {url}: its host {e.message}"
            raise
        except socket.gaierror as e:
            raise httpx.ConnectError(f"cannot resolve {url.host}: {e.strerror}", request=request) from e
        by_name = _literal(url.host) is None
        extensions = {**request.extensions, "sni_hostname": url.host} if by_name and url.scheme == "https" else request.extensions
        failed: httpx.ConnectError | None = None
        for ip in vetted:
            # the Host header (the name) is already in the request's headers and stays
            direct = httpx.Request(request.method, url.copy_with(host=str(ip)), headers=request.headers,
                                   stream=request.stream, extensions=extensions)
            try:
                return super().handle_request(direct)
            except httpx.ConnectError as e:
                failed = e
        assert failed is not None
        raise failed
