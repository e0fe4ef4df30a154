defmodule Cluster.Supervisor do
  @moduledoc """
  Stand-in for libcluster 3.5's `Cluster.Supervisor`, with its interface:
  `{Cluster.Supervisor, [topologies, opts]}` in a supervision tree. For
  each topology it builds a `%Cluster.Strategy.State{}` with libcluster's
  default MFAs (or the topology's own) and starts the strategy's
  `child_spec([state])` under a one_for_one supervisor.
  """
  use Supervisor

  def start_link([topologies, opts]) do
    Supervisor.start_link(__MODULE__, topologies, Keyword.take(opts, [:name]))
  end

  @impl true
  def init(topologies) do
    children =
      for {topology, spec} <- topologies do
        strategy = Keyword.fetch!(spec, :strategy)

        state = %Cluster.Strategy.State{
          topology: topology,
          connect: Keyword.get(spec, :connect, {:net_kernel, :connect_node, []}),
          disconnect: Keyword.get(spec, :disconnect, {:erlang, :disconnect_node, []}),
          list_nodes: Keyword.get(spec, :list_nodes, {:erlang, :nodes, [:connected]}),
          config: Keyword.get(spec, :config, []),
          meta: nil
        }

        strategy.child_spec([state])
      end

    Supervisor.init(children, strategy: :one_for_one)
  end
end
