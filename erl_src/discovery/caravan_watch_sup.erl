%%% @doc Supervisor of watches (caravan_watch), started on request. A watch
%%% that fails is not restarted: its subscriber is monitoring it.
-module(caravan_watch_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([start_watch/2]).
-export([init/1]).

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec start_watch(caravan_watch:source(), pid()) -> {ok, pid()} | {error, term()}.
start_watch(Source, Subscriber) ->
    supervisor:start_child(?MODULE, [Source, Subscriber]).

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Watch = #{id => caravan_watch,
              start => {caravan_watch, start_link, []},
              restart => temporary,
              shutdown => 5000},
    {ok, {#{strategy => simple_one_for_one, intensity => 10, period => 10}, [Watch]}}.
