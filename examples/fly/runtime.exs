import Config

# config/runtime.exs: the cluster from myapp.internal's AAAA records, asked
# of the Machine's own resolver (fdaa::3, in /etc/resolv.conf), IPv6 only.
if config_env() == :prod do
  config :caravan,
    clusters: [
      myapp: %{
        sources: [
          {:dns, %{query: "myapp.internal", type: :aaaa, family: :inet6, servers: :system}}
        ]
      }
    ]
end

# Or, in a Phoenix app (fly launch sets DNS_CLUSTER_QUERY=myapp.internal),
# application.ex's one line:
#   {Caravan.DNSCluster, query: Application.get_env(:myapp, :dns_cluster_query) || :ignore}
