defmodule CaravanElixirTest.Listing do
  @moduledoc """
  What a cluster's callback source lists on this node: `{host, port}`
  pairs kept in the application environment (set by the tests).
  """
  def discover do
    {:ok, Application.get_env(:caravan_elixir_test, :listing, [])}
  end
end
