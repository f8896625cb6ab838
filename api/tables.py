"""Every table of the service in one metadata, for what needs the whole schema: Alembic's
migrations and the test that compares them with the models. The tables themselves live with their
domain (:mod:`api.models`, :mod:`api.crm.models`); a new module of tables is imported here."""

from __future__ import annotations

import api.crm.models  # noqa: F401  (registers its tables)
import api.models  # noqa: F401  (registers its tables)
from api.core.db import Base

metadata = Base.metadata
