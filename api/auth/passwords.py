"""The password policy: long enough, not the username, and not easy to guess.

"Easy to guess" is zxcvbn's estimate (Dropbox's estimator, offline: it ships its lists of leaked
passwords, common words and names, and finds keyboard patterns, dates, repeats and l33t), as NIST
SP 800-63B asks: check new passwords against breached and common ones rather than demand symbols.
Its lists are English; a Russian password is also checked as typed on the Latin layout of the same
keys, which is how Russian passwords appear in leaks (``пароль`` is ``gfhjkm``, ``йцукен`` is
``qwerty``).
"""

from __future__ import annotations

from dataclasses import dataclass

from zxcvbn import zxcvbn

from api.core.config import ServiceSettings
from api.core.errors import BadRequest

_RU = "йцукенгшщзхъфывапролджэячсмитьбюё"
_EN = "qwertyuiop[]asdfghjkl;'zxcvbnm,.`"
_LAYOUT = str.maketrans(_RU + _RU.upper(), _EN + _EN.upper())
_CHECKED_LENGTH = 72  # zxcvbn refuses longer input (and its time grows with the length); what lies beyond cannot make a password weaker


class WeakPassword(BadRequest):
    code = "weak_password"


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    min_length: int = 10
    min_strength: int = 3
    """zxcvbn's score, 0-4: 3 is "safely unguessable" (about 10^8 guesses and more)"""

    @classmethod
    def of(cls, settings: ServiceSettings) -> PasswordPolicy:
        return cls(min_length=settings.password_min_length, min_strength=settings.password_min_strength)


def check_password(password: str, *, username: str, full_name: str = "", policy: PasswordPolicy = PasswordPolicy()) -> None:
    """WeakPassword with what to do, unless ``password`` meets the policy."""
    if len(password) < policy.min_length:
        raise WeakPassword(f"the password is shorter than {policy.min_length} characters; a phrase of three or four "
                           "unrelated words is long, easy to remember and hard to guess")
    name = username.strip().casefold()
    if len(name) >= 3 and name in password.casefold():
        raise WeakPassword("the password contains the username; choose one that does not")
    hints = [h for h in (username, full_name, *full_name.split(), "callqa") if h]
    checked = password[:_CHECKED_LENGTH]
    as_typed_latin = checked.translate(_LAYOUT)
    scores = [zxcvbn(checked, user_inputs=hints)["score"]]
    if as_typed_latin != checked:
        scores.append(zxcvbn(as_typed_latin, user_inputs=hints)["score"])
    if min(scores) < policy.min_strength:
        raise WeakPassword("the password is easy to guess (a common or leaked password, a keyboard pattern, a word with "
                           "digits or a date); a phrase of three or four unrelated words is easy to remember and hard "
                           "to guess")
