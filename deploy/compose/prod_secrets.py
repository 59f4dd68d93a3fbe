"""Make fresh secrets for the compose `prod` profile, as an env file on standard output:

    python3 deploy/compose/prod_secrets.py > var/compose-prod.env
    docker compose --env-file var/compose-prod.env --profile prod up --build prod-gateway

Make it once and keep it: the key-encryption key unlocks every stored report and case (a new
one makes the old data unreadable), and PostgreSQL keeps the password it first started with
(start over with `docker compose --profile prod down -v`). Standard library only (Python 3.11
or later), so it runs without the project's environment.
"""

from __future__ import annotations

import base64
import datetime
import secrets

APPS = ("gateway", "intake", "cases", "training", "notify")


def prod_secrets() -> dict[str, str]:
    """Variable → value, for docker-compose.yml's `${PROD_*}` references."""
    password = secrets.token_hex(24)  # URL-safe as it is: it goes inside database URLs
    kid = "k" + datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
    values = {
        "PROD_POSTGRES_PASSWORD": password,
        # "kid:base64(32 bytes)": wraps every data key (UPSTANDER_KEK).
        "PROD_KEK": f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}",
        "PROD_SERVICE_SECRET": secrets.token_urlsafe(32),
        "PROD_RECEIPT_KEY": secrets.token_urlsafe(32),
        # Intake's escrow blind-index key, and the Ed25519 seed signing private-record proofs.
        "PROD_ESCROW_INDEX_KEY": secrets.token_urlsafe(32),
        "PROD_RECORD_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        # A raw Ed25519 seed (base64 of 32 bytes) signing case exports.
        "PROD_EXPORT_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    for app in APPS:
        values[f"PROD_{app.upper()}_DATABASE_URL"] = (
            f"postgresql+asyncpg://upstander:{password}@prod-postgres:5432/{app}"
        )
    return values


def main() -> None:
    print("# Secrets of the compose prod profile (deploy/compose/prod_secrets.py). Keep private.")
    for name, value in prod_secrets().items():
        print(f"{name}={value}")


if __name__ == "__main__":
    main()
