"""Alembic environment of the training service (the kit does the work)."""

from upstander.kit.alembic_env import run
from upstander.training.models import Model

run(Model.metadata)
