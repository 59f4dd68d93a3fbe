"""Alembic environment of the notify service (the kit does the work)."""

from upstander.kit.alembic_env import run
from upstander.notify.models import Model

run(Model.metadata)
