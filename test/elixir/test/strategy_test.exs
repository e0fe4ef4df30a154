# Caravan 1.0.1's strategy and caravan's own, started the ways an Elixir
# application starts them.
defmodule CaravanElixirTest.StrategyTest do
  use ExUnit.Case

  alias Caravan.Cluster.DnsStrategy

  # A Caravan.DnsClient that always answers one SRV record.
  defmodule OneRecord do
    @behaviour Caravan.DnsClient

    @impl true
    def get_nodes(query) when is_binary(query), do: [{7000, "somenode.foo.example.net"}]
  end

  # A connect MFA that reports every node it is asked for to the test.
  def report_connect(test, node) do
    send(test, {:connect, node})
    true
  end

  defp strategy_config do
    [dns_client: OneRecord, node_sname: "connectnodetest", query: "fooo", poll_interval: 100]
  end

  @tag capture_log: true
  test "a State built by hand, disconnect and list_nodes nil, starts the 1.0.1 strategy" do
    state = %Cluster.Strategy.State{
      topology: :by_hand,
      connect: {__MODULE__, :report_connect, [self()]},
      config: strategy_config()
    }

    start_supervised!({DnsStrategy, [state]})
    assert_receive {:connect, :"connectnodetest-7000@somenode.foo.example.net"}, 5_000
  end

  @tag capture_log: true
  test "the 1.0.1 strategy under Cluster.Supervisor, with libcluster's config shape" do
    topologies = [
      caravan: [
        strategy: DnsStrategy,
        connect: {__MODULE__, :report_connect, [self()]},
        config: strategy_config()
      ]
    ]

    start_supervised!({Cluster.Supervisor, [topologies, []]})
    assert_receive {:connect, :"connectnodetest-7000@somenode.foo.example.net"}, 5_000
    assert Enum.any?(:caravan.status(), &match?(%{cluster: :caravan, started_by: :libcluster}, &1))
  end

  test "the cluster config/runtime.exs names runs, started by caravan" do
    assert %{cluster: :runtime, started_by: :caravan, prune: false} =
             Enum.find(:caravan.status(), &(&1.cluster == :runtime))
  end
end
