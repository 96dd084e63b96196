# One image for every Recourse process; docker-compose.yml picks the command
# (recourse worker | relay | scheduler | migrate | console).
FROM python:3.11.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Sources only (see .dockerignore); a non-editable install puts the migrations, presets and
# schemas in site-packages, so the image does not depend on /app after this step.
COPY pyproject.toml README.md ./
COPY messages ./messages
COPY store ./store
COPY ledger ./ledger
COPY policy ./policy
COPY scheduler ./scheduler
COPY workers ./workers
COPY console ./console
RUN pip install . && rm -rf /app/build

# Nothing in the container needs root; a fixed uid keeps volume permissions predictable.
RUN useradd --system --uid 10001 --no-create-home recourse
USER recourse

# Healthy while the process can reach its database and broker (`recourse health`, exit 1
# otherwise); docker-compose.yml turns it off for the one-shot `migrate`.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["recourse", "health"]

CMD ["recourse", "--help"]
