defmodule CaravanElixirTest.MixProject do
  use Mix.Project

  # caravan's Elixir tier (scripts/run-tests.sh elixir): an application that
  # uses caravan the way an Elixir user does. caravan is a path dependency
  # built by rebar3 (MIX_REBAR3=/usr/bin/rebar3); nothing comes from hex.
  def project do
    [
      app: :caravan_elixir_test,
      version: "0.1.0",
      elixir: "~> 1.14",
      elixirc_paths: elixirc_paths(Mix.env()),
      deps: [{:caravan, path: "../..", manager: :rebar3}]
    ]
  end

  # test/support: the peer helpers the tests share.
  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]

  def application do
    [extra_applications: [:logger], mod: {CaravanElixirTest.Application, []}]
  end
end
