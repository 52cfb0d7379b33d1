# The faultprint collector.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sdk ./sdk
COPY collector ./collector
RUN pip install --no-cache-dir ".[collector]" \
    && mkdir -p /var/lib/faultprint/spool && chown -R nobody /var/lib/faultprint
EXPOSE 4318
USER nobody
ENTRYPOINT ["faultprint"]
CMD ["serve", "--host", "0.0.0.0", "--port", "4318"]
