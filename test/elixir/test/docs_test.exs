# caravan's documentation as an Elixir user reads it: docs chunks built by
# edoc's chunk doclet at compile time (scripts/docs-chunks.escript).

# Caravan 1.0.1's test/caravan/epmd_test.exs: the two examples of
# Caravan.Epmd.dist_port/1, run as doctests.
defmodule Caravan.EpmdDocTest do
  use ExUnit.Case, async: true
  doctest Caravan.Epmd
end

# Caravan 1.0.1's test/caravan_test.exs: the module exists and its doc
# compiles as a doctest (it has no examples, so it adds no test).
defmodule CaravanDocTest do
  use ExUnit.Case, async: true
  doctest Caravan

  test "Caravan's moduledoc says what the library does" do
    {:docs_v1, _, _, "text/markdown", %{"en" => doc}, _, _} = Code.fetch_docs(Caravan)
    assert doc =~ "without epmd"
    assert doc =~ "-epmd_module caravan_epmd"
  end
end

defmodule Caravan.HelpTest do
  use ExUnit.Case, async: true
  import ExUnit.CaptureIO

  test "IEx's h shows caravan's Erlang and Elixir modules" do
    assert capture_io(fn -> IEx.Introspection.h({:caravan, :discover}) end) =~
             "The nodes a discovery source lists"

    assert capture_io(fn -> IEx.Introspection.h({Caravan.Epmd, :dist_port}) end) =~
             "iex> Caravan.Epmd.dist_port"
  end
end
