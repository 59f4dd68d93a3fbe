# syntax=docker/dockerfile:1
# One image per app, all from this file and the repository root:
#   docker build --build-arg SERVICE=cases -t upstander-cases .
# SERVICE is gateway, intake, cases, training or notify. The image holds that app, the kit
# and the locked dependencies (uv.lock, no dev tools), runs as an unprivileged user and
# listens on 0.0.0.0 on the app's port (gateway 8000, intake 8001, cases 8002, training 8003,
# notify 8004; UPSTANDER_<APP>_PORT changes it). `python scripts/migrate.py <app>` in the
# same image upgrades the app's database (the Kubernetes Job and the compose `prod` profile).
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ARG SERVICE
ARG UV_VERSION=0.13.9
RUN case "${SERVICE}" in \
      gateway|intake|cases|training|notify) ;; \
      *) echo "build with --build-arg SERVICE=gateway|intake|cases|training|notify (got '${SERVICE}')" >&2; exit 1 ;; \
    esac
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app

# Third-party dependencies first: this layer changes only with the lock file.
COPY pyproject.toml uv.lock ./
COPY libs/kit/pyproject.toml libs/kit/
COPY gateway/pyproject.toml gateway/
COPY services/intake/pyproject.toml services/intake/
COPY services/cases/pyproject.toml services/cases/
COPY services/training/pyproject.toml services/training/
COPY services/notify/pyproject.toml services/notify/
RUN uv sync --frozen --no-dev --package "upstander-${SERVICE}" --no-install-workspace

# Then the code: the kit, the app (with its migrations) and the migration script. The other
# apps' folders go once the environment is built: an image carries only its own app. The
# code is compiled here because the containers run on a read-only filesystem: our code as it
# is (the apps keep its docstrings under -OO: upstander.kit.own_code), the installed packages
# for -OO as well (`-o 2`), which is how the apps run.
COPY libs ./libs
COPY gateway ./gateway
COPY services ./services
COPY scripts ./scripts
RUN uv sync --frozen --no-dev --package "upstander-${SERVICE}" \
    && if [ "${SERVICE}" != gateway ]; then rm -rf gateway; fi \
    && find services -mindepth 1 -maxdepth 1 ! -name "${SERVICE}" -exec rm -rf {} + \
    && python -m compileall -q -x '/\.venv/' /app \
    && python -m compileall -q -o 2 /app/.venv \
    && mkdir -p var

FROM python:${PYTHON_VERSION}-slim
ARG SERVICE
# The standard library compiled for -OO too, as the read-only containers cannot cache it (the
# official image ships it without bytecode; test folders, if any, left out).
RUN python -OO -m compileall -q -x '/(test|tests|idle_test)/' \
        "$(python -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')" \
    && groupadd --system --gid 10001 upstander \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home upstander
# The code belongs to root (the app cannot change it); only var/ is the app's.
COPY --from=build /app /app
RUN chown upstander:upstander /app/var
WORKDIR /app
# Every app reads only its own UPSTANDER_<APP>_HOST; inside a container it must listen
# beyond loopback.
# GLIBC_TUNABLES: freed blocks of 128 KiB or more go back to the system at once, as the
# launcher has it (scripts/launcher.py, MALLOC_TUNABLES; docs/performance.md).
ENV PATH="/app/.venv/bin:${PATH}" \
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UPSTANDER_APP="${SERVICE}" \
    UPSTANDER_GATEWAY_HOST=0.0.0.0 \
    UPSTANDER_INTAKE_HOST=0.0.0.0 \
    UPSTANDER_CASES_HOST=0.0.0.0 \
    UPSTANDER_TRAINING_HOST=0.0.0.0 \
    UPSTANDER_NOTIFY_HOST=0.0.0.0
LABEL org.opencontainers.image.title="upstander-${SERVICE}"
USER 10001:10001
EXPOSE 8000-8004
# `exec`: the app is PID 1 and gets SIGTERM itself (uvicorn drains, then stops).
# `-OO`: the apps run without the docstrings of the standard library and the installed
# packages (5 MB an app; docs/performance.md); our own code keeps its (upstander.kit.own_code).
CMD ["/bin/sh", "-c", "exec python -OO -m \"upstander.${UPSTANDER_APP}\""]
