# The sessionrec image: every `sessionrec` command (worker, trainer, replay, monitor, tail, ...).
#   docker build -t sessionrec .
#   docker run --rm sessionrec --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# CPU-only torch from PyTorch's own index, before the project: from PyPI the same pin would pull
# several GB of CUDA libraries. The constraint torch==2.13.0 is then already satisfied (2.13.0+cpu).
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# The tested versions first (constraints.txt, a layer of its own), then the code.
WORKDIR /src
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY model ./model
COPY replay ./replay
COPY stream ./stream
RUN pip install -c constraints.txt . && rm -rf /src

# Not root. /app is the working directory: Faust keeps its data folder there, and the model
# checkpoint is mounted at /app/runs/model (the default SESSIONREC_MODEL_DIR, runs/model).
RUN useradd --create-home --uid 10001 --user-group sessionrec \
    && mkdir -p /app/runs \
    && chown -R sessionrec:sessionrec /app
WORKDIR /app
USER sessionrec

ENTRYPOINT ["sessionrec"]
CMD ["worker"]
