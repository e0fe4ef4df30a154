# System.stop/0 on a member node, as an operator stops a release: the
# user's application (Cluster.Supervisor in its tree, caravan's strategy
# under it) stops before caravan, and the other members still hear the
# departure: they mark the node departed and do not redial it.
#
# Three nodes started with OTP's peer, no epmd (-start_epmd false
# -epmd_module caravan_epmd), all on 127.0.0.1, each named app-PORT.
defmodule CaravanElixirTest.StopTest do
  use ExUnit.Case

  import CaravanElixirTest.Peers, only: [call: 4]
  alias CaravanElixirTest.Peers

  setup do
    ports = Peers.free_ports(3, ["127.0.0.1"])
    listing = for p <- ports, do: {"127.0.0.1", p}
    peers = Enum.map(ports, &start_member(&1, listing))
    on_exit(fn -> Enum.each(peers, fn {peer, _} -> Peers.stop(peer) end) end)
    %{peers: peers}
  end

  @tag timeout: 60_000
  test "System.stop/0 on a member: the others see it depart", %{peers: peers} do
    names = for {_, n} <- peers, do: n
    wait_until(fn -> Enum.all?(peers, &(members(&1) == 3)) end)

    [{leaving_peer, leaving} | staying] = Enum.reverse(peers)
    :peer.cast(leaving_peer, System, :stop, [])

    wait_until(fn -> Enum.all?(staying, &(leaving not in call(&1, :erlang, :nodes, []))) end)
    # Well past retry_min (100 ms): a redial would show as a pending retry.
    Process.sleep(1_000)

    for peer <- staying do
      assert %{departed: [^leaving], pending_retries: 0, started_by: :libcluster} =
               status(peer)

      assert Enum.sort(call(peer, :erlang, :nodes, [])) ==
               Enum.sort(names -- [leaving, elem(peer, 1)])
    end
  end

  defp start_member(port, listing) do
    member = Peers.start("app-#{port}", "127.0.0.1")
    :ok = call(member, Application, :put_env, [:caravan_elixir_test, :listing, listing])

    topologies = [
      app: [
        strategy: :caravan_libcluster,
        config: [
          sources: [
            {:callback, %{basename: "app", discover: &CaravanElixirTest.Listing.discover/0}}
          ],
          poll_interval: 200,
          retry_min: 100
        ]
      ]
    ]

    :ok = call(member, Application, :put_env, [:libcluster, :topologies, topologies])
    {:ok, _} = call(member, Application, :ensure_all_started, [:caravan_elixir_test])
    member
  end

  defp status(member) do
    [status] = for %{cluster: :app} = s <- call(member, :caravan, :status, []), do: s
    status
  end

  defp members(member), do: status(member).members

  defp wait_until(fun), do: Peers.wait_until(fun, 100)
end
