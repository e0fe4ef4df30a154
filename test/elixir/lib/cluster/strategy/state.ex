defmodule Cluster.Strategy.State do
  @moduledoc """
  Stand-in for libcluster 3.5's `Cluster.Strategy.State` (hex is unreachable
  here): the same fields with the same defaults, every MFA `nil` until
  `Cluster.Supervisor` fills it in.
  """
  defstruct topology: nil,
            connect: nil,
            disconnect: nil,
            list_nodes: nil,
            meta: nil,
            config: []
end
