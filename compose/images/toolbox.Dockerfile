# The toolbox: where the agent's commands run on the Docker runtime, and the fault proxy and
# the network/disk fault helpers. The docker CLI talks only to the operator's filtering proxy
# socket mounted at /var/run/docker.sock.
FROM debian:bookworm-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      ca-certificates curl jq redis-tools etcd-client iproute2 iptables procps util-linux coreutils \
 && rm -rf /var/lib/apt/lists/*
COPY docker /usr/local/bin/docker
COPY operator /usr/local/bin/operator
WORKDIR /work
CMD ["sleep", "infinity"]
