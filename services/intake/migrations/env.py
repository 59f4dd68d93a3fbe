"""Alembic environment of the intake service: the kit's, with this service's metadata."""

from upstander.intake.models import Model
from upstander.kit.alembic_env import run

run(Model.metadata)
