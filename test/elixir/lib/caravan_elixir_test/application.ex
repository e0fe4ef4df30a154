defmodule CaravanElixirTest.Application do
  @moduledoc """
  The user's application: `Cluster.Supervisor` in its own tree, as
  libcluster's README says. It needs caravan, so it starts after caravan
  and stops before it.
  """
  use Application

  @impl true
  def start(_type, _args) do
    topologies = Application.get_env(:libcluster, :topologies, [])

    children =
      case topologies do
        [] -> []
        _ -> [{Cluster.Supervisor, [topologies, [name: CaravanElixirTest.ClusterSupervisor]]}]
      end

    Supervisor.start_link(children, strategy: :one_for_one, name: CaravanElixirTest.Supervisor)
  end
end
