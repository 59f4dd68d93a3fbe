"""Alembic environment of the cases service: the kit's, with this service's metadata."""

from upstander.cases.models import Model
from upstander.kit.alembic_env import run

run(Model.metadata)
