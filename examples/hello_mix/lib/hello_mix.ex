defmodule HelloMix do
  @moduledoc "An example release whose nodes form a cluster through caravan."

  @doc "The nodes this node is connected to."
  def peers, do: Enum.sort(Node.list())
end
