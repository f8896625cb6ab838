"""Sales: CRM exports in, calls linked to leads and deals, KPIs per manager, team or department out.

Pure DataFrame transformations; reading files happens only in the thin ``read_*(path)`` wrappers.
"""
