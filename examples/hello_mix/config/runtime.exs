import Config

# The cluster: every instance of hello.service.consul, asked of the DNS
# server in DNS_SERVER (IP:PORT; the local Consul agent is 127.0.0.1:8600).
if config_env() == :prod do
  config :caravan,
    clusters: [
      hello: %{
        sources: [
          {:dns,
           %{
             query: "hello.service.consul",
             basename: "hello",
             servers: [System.get_env("DNS_SERVER", "127.0.0.1:8600")]
           }}
        ],
        poll_interval: 1000
      }
    ]
end
