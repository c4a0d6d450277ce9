# KeyWatch image for docker-compose.yml. Build: docker build -t keywatch .
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends softhsm2 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY detector ./detector
RUN pip install --no-cache-dir . && useradd --system --uid 10001 keywatch
USER keywatch
ENTRYPOINT ["keywatch"]
CMD ["--help"]
