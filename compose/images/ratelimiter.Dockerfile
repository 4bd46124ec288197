# The rate-limiter node. The binary is built on the host (same Debian release as the base).
FROM debian:bookworm-slim
COPY ratelimiter /usr/local/bin/ratelimiter
ENV RATELIMITER_NODE_HOST=0.0.0.0 RATELIMITER_NODE_PORT=8000
EXPOSE 8000
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/ratelimiter"]
