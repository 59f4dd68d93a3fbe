"""Alembic environment of the gateway: the kit's runner over the gateway's metadata."""

from upstander.gateway.models import Model
from upstander.kit.alembic_env import run

run(Model.metadata)
