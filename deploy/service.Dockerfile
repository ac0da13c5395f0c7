# The image of one service (they differ only by the package they run), built from the repository
# root because a service needs the workspace's shared/ packages:
#   docker build -f deploy/service.Dockerfile --build-arg SERVICE=workflow -t desk-workflow .
FROM python:3.11-slim-bookworm
ARG SERVICE
ENV SERVICE=${SERVICE} UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 PATH="/app/.venv/bin:$PATH"
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY shared ./shared
COPY services ./services
RUN test -n "${SERVICE}" && uv sync --frozen --no-dev --package "${SERVICE}"
USER nobody
CMD ["sh", "-c", "exec python -m \"$SERVICE\""]
