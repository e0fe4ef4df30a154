%%% A Common Test hook that owns one thing: the caravan application runs for
%%% the whole of a suite that names it in suite/0
%%% (`{ct_hooks, [caravan_test_app]}'). It is started before the suite's
%%% init_per_suite (CT calls the hook even where the suite has none) and
%%% stopped after its end_per_suite, or, where that never runs (a failed
%%% init_per_suite), when the hook's scope ends: no suite leaves it running
%%% for the next.
-module(caravan_test_app).

-export([init/2, pre_init_per_suite/3, post_end_per_suite/4, terminate/1]).

%% Whether this hook has the application running.
-type state() :: started | stopped.

-spec init(term(), term()) -> {ok, state()}.
init(_Id, _Opts) ->
    {ok, stopped}.

%% Config is what earlier hooks passed on: a skip or a failure goes on
%% untouched, with nothing started.
-spec pre_init_per_suite(atom(), Config, state()) -> {Config, state()}
              when Config :: list() | {skip, term()} | {fail, term()}.
pre_init_per_suite(_Suite, Config, State) when not is_list(Config) ->
    {Config, State};
pre_init_per_suite(_Suite, Config, stopped) ->
    {ok, _} = application:ensure_all_started(caravan),
    {Config, started}.

-spec post_end_per_suite(atom(), list(), Return, state()) -> {Return, stopped}
              when Return :: term().
post_end_per_suite(_Suite, _Config, Return, State) ->
    ok = stop(State),
    {Return, stopped}.

-spec terminate(state()) -> ok.
terminate(State) ->
    _ = stop(State),
    ok.

-spec stop(state()) -> ok | {error, term()}.
stop(started) ->
    application:stop(caravan);
stop(stopped) ->
    ok.
