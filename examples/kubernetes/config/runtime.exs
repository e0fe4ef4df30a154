import Config

# One of the two forms; both find the same pods.
if config_env() == :prod do
  query = System.fetch_env!("DNS_CLUSTER_QUERY")

  config :caravan,
    clusters: [
      myapp: %{
        sources: [
          # A form: the headless Service's A records (AAAA on an IPv6
          # cluster: type: :aaaa). Basename and port from this node's own
          # name, myapp-4370@POD_IP.
          {:dns, %{query: query, type: :a, servers: :system}}

          # SRV form: the named port's records carry the port.
          # {:dns, %{query: "_dist._tcp." <> query, servers: :system}}
        ]
      }
    ]
end

# Or, in a Phoenix app, leave this out and put in application.ex:
#   {Caravan.DNSCluster, query: Application.get_env(:myapp, :dns_cluster_query) || :ignore}
# with config :myapp, :dns_cluster_query, System.get_env("DNS_CLUSTER_QUERY").
