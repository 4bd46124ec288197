# An etcd member, from Debian's packages (etcd-server; etcd-client for its entrypoint). Its
# data lives on a disk volume mounted at /var/lib/etcd: unlike the other nodes' tmpfs, it
# outlives a stop, as a Raft member's log must. etcd's backend quota bounds it.
FROM debian:bookworm-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server etcd-client \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/etcd && chown etcd:etcd /var/lib/etcd && chmod 700 /var/lib/etcd
COPY etcd-member.sh /usr/local/bin/etcd-member
WORKDIR /var/lib/etcd
EXPOSE 2379 2380
USER etcd
ENTRYPOINT ["/usr/local/bin/etcd-member"]
