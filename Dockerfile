# polymodal serve in a container: CPU torch (the pin in constraints.txt), the serve and retrieval extras.
#
#   docker build -t polymodal-serve .
#   docker run --rm -p 8000:8000 -v "$PWD/polymodal-demo:/models/polymodal-demo:ro" \
#       --env POLYMODAL_API_KEY="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" polymodal-serve
#
# Other models or indexes: mount them and pass the arguments of `polymodal serve`, e.g.
#   docker run ... polymodal-serve /models/a /models/b --index /indexes/photos --host 0.0.0.0 --workers 2
# docker stop waits 10 s by default; give in-flight requests their --graceful-timeout: docker stop -t 35.
FROM python:3.11-slim

# Where the package index serves CUDA builds of torch by default, pass the CPU wheel index that
# README.md names: docker build --build-arg PIP_EXTRA_INDEX_URL=... .
ARG PIP_EXTRA_INDEX_URL=
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
RUN pip install -c constraints.txt ".[serve,retrieval]" \
    && useradd --system --uid 10001 --no-create-home polymodal
USER polymodal

EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
# Binding 0.0.0.0 (reachable from outside the container) needs POLYMODAL_API_KEY (or --api-key).
ENTRYPOINT ["polymodal", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["/models/polymodal-demo"]
