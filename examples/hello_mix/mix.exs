defmodule HelloMix.MixProject do
  use Mix.Project

  # caravan is a rebar3 project: Mix builds it with rebar3. hex is not
  # needed: point MIX_REBAR3 at a rebar3 binary (Debian: /usr/bin/rebar3).
  def project do
    [
      app: :hello_mix,
      version: "0.1.0",
      elixir: "~> 1.14",
      deps: [{:caravan, path: "../..", manager: :rebar3}],
      releases: [hello_mix: [include_executables_for: [:unix]]]
    ]
  end

  def application do
    [extra_applications: [:logger]]
  end
end
