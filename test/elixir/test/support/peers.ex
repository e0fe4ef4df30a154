# The nodes the Elixir tests start: OTP's peer, no epmd (-start_epmd false
# -epmd_module caravan_epmd), this VM's code path, one cookie; and the
# helpers every such test needs around them.
defmodule CaravanElixirTest.Peers do
  import ExUnit.Assertions, only: [flunk: 1]

  @cookie ~c"caravan-elixir-test"

  @doc "Starts name@host with caravan as its epmd module; `{peer, node}`."
  def start(name, host, extra_args \\ []) do
    paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])

    {:ok, peer, node} =
      :peer.start(%{
        name: String.to_charlist(name),
        host: String.to_charlist(host),
        longnames: true,
        connection: :standard_io,
        wait_boot: 30_000,
        args:
          [~c"-start_epmd", ~c"false", ~c"-epmd_module", ~c"caravan_epmd"] ++
            extra_args ++ [~c"-setcookie", @cookie] ++ paths
      })

    {peer, node}
  end

  @doc "Stops a peer; one already gone is fine."
  def stop(peer) do
    try do
      :peer.stop(peer)
    catch
      :exit, _ -> :ok
    end
  end

  def call({peer, _}, m, f, a), do: :peer.call(peer, m, f, a, 15_000)

  @doc "Polls fun every 100 ms, at most `tries` times, until it returns true."
  def wait_until(fun, tries) do
    cond do
      fun.() -> :ok
      tries == 0 -> flunk("condition not met in time")
      true -> Process.sleep(100) && wait_until(fun, tries - 1)
    end
  end

  @doc "`count` distinct random ports below the ephemeral range, free on every one of `ips` now."
  def free_ports(count, ips) do
    Stream.repeatedly(fn -> 20_000 + :rand.uniform(10_000) end)
    |> Stream.filter(fn port -> Enum.all?(ips, &free?(port, &1)) end)
    |> Stream.uniq()
    |> Enum.take(count)
  end

  defp free?(port, ip) do
    {:ok, addr} = :inet.parse_address(String.to_charlist(ip))

    case :gen_tcp.listen(port, ip: addr, reuseaddr: false) do
      {:ok, s} -> :gen_tcp.close(s) == :ok
      _ -> false
    end
  end
end
