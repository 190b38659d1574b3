# Consul agent of the docker-compose demo: one server that bootstraps itself and elects itself
# leader. docker-compose.yml mounts this file read-only at /consul/chatmesh/server.hcl and starts
# `agent -config-file=/consul/chatmesh/server.hcl` (not into /consul/config: the image's entrypoint
# chowns that folder, which fails on a read-only bind mount).
#
# The chatmesh nodes register themselves here (service `chatmesh`, address = their compose service
# name, port = mesh port 7070, a TTL check they keep passing) and watch the passing instances.
#
# Not production: a single server has no redundancy, ACLs and TLS are off. Production runs 3 or 5
# servers and a client agent on every host, with chatmesh pointing --consul-url at the local agent.

datacenter       = "dc1"
node_name        = "consul"
server           = true
bootstrap_expect = 1

# HTTP API and DNS on every interface of the container, so the nodes reach http://consul:8500.
client_addr = "0.0.0.0"

ui_config {
  enabled = true
}

# Elect the leader and react to failures quickly (the production default; the dev default is 5).
performance {
  raft_multiplier = 1
}

# data_dir is /consul/data, set by the image's entrypoint.
log_level            = "INFO"
disable_update_check = true
