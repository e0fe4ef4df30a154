# Caravan.DNSCluster, the drop-in for Phoenix's DNSCluster, from Elixir:
# its options as dns_cluster 0.2 takes them, `:ignore`, and a Phoenix-shaped
# application.ex child list on three real nodes (OTP peer, no epmd) that find
# each other through A records served by a real BIND.
defmodule CaravanElixirTest.DNSClusterTest do
  use ExUnit.Case

  import CaravanElixirTest.Peers, only: [call: 4]
  alias CaravanElixirTest.{Peers, PhoenixLike}

  @ips ["127.0.0.61", "127.0.0.62", "127.0.0.63"]

  describe "options" do
    test "query: :ignore returns :ignore and starts no cluster" do
      before = :caravan.status()
      assert :ignore == Caravan.DNSCluster.start_link(query: :ignore)
      assert :ignore == Caravan.DNSCluster.start_link(query: :ignore, interval: 10)
      assert before == :caravan.status()
      assert [] == for(%{cluster: DNSCluster} = s <- :caravan.status(), do: s)
    end

    test "a Phoenix child list with the query unset starts, with no cluster" do
      Application.delete_env(:caravan_elixir_test, :dns_cluster_query)
      {:ok, sup} = Supervisor.start_link(PhoenixLike.children(), strategy: :one_for_one)

      assert {Caravan.DNSCluster, :undefined, :worker, _} =
               List.keyfind(Supervisor.which_children(sup), Caravan.DNSCluster, 0)

      assert [] == for(%{cluster: DNSCluster} = s <- :caravan.status(), do: s)
      Supervisor.stop(sup)
    end

    test "wrong types raise ArgumentError naming the option" do
      for {opts, option} <- [
            {[], ":query"},
            {[query: 123], ":query"},
            {[query: ~c"charlist.internal"], ":query"},
            {[query: []], ":query"},
            {[query: [{"base", :atom}]], ":query"},
            {[query: "a.internal", resource_types: []], ":resource_types"},
            {[query: "a.internal", resource_types: [:mx]], ":resource_types"},
            {[query: "a.internal", resource_types: :a], ":resource_types"},
            {[query: "a.internal", interval: "5000"], ":interval"},
            {[query: "a.internal", interval: 0], ":interval"},
            {[query: "a.internal", connect_timeout: -1], ":connect_timeout"},
            {[query: "a.internal", log: :loud], ":log"},
            {[query: "a.internal", name: "cluster"], ":name"},
            {[query: "a.internal", dns_servers: ["not an address"]], ":dns_servers"},
            {[query: "a.internal", resolver: MyResolver], ":resolver"}
          ] do
        error = assert_raise ArgumentError, fn -> Caravan.DNSCluster.start_link(opts) end
        assert error.message =~ option, "#{inspect(opts)}: #{error.message}"
      end
    end

    test "the caravan config a dns_cluster config becomes" do
      assert {:my_cluster, %{poll_interval: 1000, sources: sources}} =
               Caravan.DNSCluster.cluster_config(
                 query: ["app.internal", {"other-4371", "other.internal"}, {"x", "x.internal"}],
                 resource_types: [:aaaa, :srv],
                 interval: 1000,
                 name: :my_cluster,
                 dns_servers: ["127.0.0.1:53"]
               )

      assert [
               {:dns, %{query: "app.internal", type: [:aaaa]} = app},
               {:dns, %{query: "app.internal", type: :srv}},
               {:dns, %{query: "other.internal", type: [:aaaa], basename: "other", port: 4371}},
               {:dns, %{query: "other.internal", type: :srv, basename: "other"} = other_srv},
               {:dns, %{query: "x.internal", type: [:aaaa], basename: "x"} = x},
               {:dns, %{query: "x.internal", type: :srv}}
             ] = sources

      refute Map.has_key?(app, :basename)
      refute Map.has_key?(other_srv, :port)
      refute Map.has_key?(x, :port)

      assert {DNSCluster,
              %{poll_interval: 5000, self_listed: true, sources: [{:dns, %{type: [:a, :aaaa]}}]}} =
               Caravan.DNSCluster.cluster_config(query: "app.internal")

      # dns_cluster's form for another app's nodes: this node is never among
      # them, so it must not wait to be listed (it would never connect).
      assert {DNSCluster, %{self_listed: false}} =
               Caravan.DNSCluster.cluster_config(query: {"remote-4370", "remote.internal"})

      # Values dns_cluster takes: a log of nil, an infinite connect timeout.
      assert {DNSCluster, _} =
               Caravan.DNSCluster.cluster_config(
                 query: "app.internal",
                 log: nil,
                 connect_timeout: :infinity
               )
    end
  end

  describe "on real nodes" do
    setup do
      root = Path.expand("../../..", __DIR__)
      load_test_module(root, "caravan_test_bind")
      dir = Path.join(System.tmp_dir!(), "caravan-dnscluster-#{System.unique_integer([:positive])}")
      records = for ip <- @ips, do: ~c"myapp A #{ip}"
      bind = :caravan_test_bind.start(String.to_charlist(dir), %{records: records})
      [port] = Peers.free_ports(1, @ips)

      on_exit(fn ->
        :caravan_test_bind.stop(bind)
        File.rm_rf(dir)
      end)

      %{bind: bind, port: port}
    end

    @tag timeout: 120_000
    test "a Phoenix child list forms, prunes, departs and reports", %{bind: bind, port: port} do
      server = to_string(:caravan_test_bind.server(bind))
      peers = Enum.map(@ips, &start_member(&1, port, server))
      on_exit(fn -> Enum.each(peers, fn {peer, _} -> Peers.stop(peer) end) end)
      names = for {_, n} <- peers, do: n
      assert Enum.map(names, &to_string/1) == for(ip <- @ips, do: "myapp-#{port}@#{ip}")

      wait_until(fn ->
        Enum.all?(peers, fn {_, n} = p -> Enum.sort(nodes(p)) == Enum.sort(names -- [n]) end)
      end)

      for p <- peers do
        assert %{members: 3, listed: 3, prune: true, started_by: :caravan,
                 sources: [%{source: :dns, last_error: :undefined}]} = status(p)
      end

      # A record gone: that node lets go of the cluster and the others of it.
      [a, b, c] = peers
      :ok = :caravan_test_bind.nsupdate(bind, [~c"update delete myapp.consul. A 127.0.0.63"])
      wait_until(fn -> nodes(a) == [elem(b, 1)] and nodes(b) == [elem(a, 1)] end)
      wait_until(fn -> nodes(c) == [] end)

      # Stopped: it says so, and the other does not redial it.
      :peer.cast(elem(b, 0), System, :stop, [])
      wait_until(fn -> nodes(a) == [] end)
      Process.sleep(1_000)
      assert %{departed: [departed], pending_retries: 0, members: 1} = status(a)
      assert departed == elem(b, 1)
    end
  end

  defp start_member(ip, port, server) do
    tuple = "{" <> String.replace(ip, ".", ",") <> "}"

    member =
      Peers.start("myapp-#{port}", ip,
                  [~c"-kernel", ~c"inet_dist_use_interface", String.to_charlist(tuple)])

    {:ok, _} = call(member, Application, :ensure_all_started, [:caravan])

    # Short polls for the test; everything else as the generated app has it.
    for {k, v} <- [dns_cluster_query: "myapp.consul", dns_servers: [server],
                   dns_cluster_interval: 300] do
      :ok = call(member, Application, :put_env, [:caravan_elixir_test, k, v])
    end

    {:ok, _} = call(member, PhoenixLike, :start_unlinked, [])
    member
  end

  defp load_test_module(root, name) do
    file =
      Enum.find([Path.join([root, "test", "support", name <> ".erl"]),
                 Path.join([root, "test", name <> ".erl"])], &File.exists?/1)

    {:ok, mod, bin} = :compile.file(String.to_charlist(file), [:binary])
    {:module, ^mod} = :code.load_binary(mod, String.to_charlist(file), bin)
  end

  defp nodes(member), do: call(member, :erlang, :nodes, [])

  defp status(member) do
    [status] = for %{cluster: DNSCluster} = s <- call(member, :caravan, :status, []), do: s
    status
  end

  defp wait_until(fun), do: Peers.wait_until(fun, 300)
end
