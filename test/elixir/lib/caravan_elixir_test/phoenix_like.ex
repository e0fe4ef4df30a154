defmodule CaravanElixirTest.PhoenixLike do
  @moduledoc """
  The supervision tree `mix phx.new` generates (lib/my_app/application.ex),
  with dns_cluster's child swapped for caravan's: the one line of the
  migration. The other children stand in for Phoenix's (PubSub, Endpoint).
  """

  def children do
    [
      {Registry, keys: :unique, name: CaravanElixirTest.PubSubStandIn},
      {Caravan.DNSCluster,
       query: Application.get_env(:caravan_elixir_test, :dns_cluster_query) || :ignore,
       dns_servers: Application.get_env(:caravan_elixir_test, :dns_servers),
       interval: Application.get_env(:caravan_elixir_test, :dns_cluster_interval, 5000)},
      {Agent, fn -> :endpoint end}
    ]
  end

  # What Application.start/2 does in the generated application.ex.
  def start(_type, _args) do
    opts = [strategy: :one_for_one, name: CaravanElixirTest.PhoenixLikeSupervisor]
    Supervisor.start_link(children(), opts)
  end

  # For a test that starts the tree from a short-lived process (peer's call).
  def start_unlinked do
    {:ok, pid} = start(:normal, [])
    Process.unlink(pid)
    {:ok, pid}
  end
end
