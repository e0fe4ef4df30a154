%%% @doc Supervisor of clusters: those configured in the application
%%% environment (`{caravan, [{clusters, [{Name, Config}]}]}') at start, and
%%% those started at run time with caravan:start_cluster/2.
-module(caravan_cluster_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([start_cluster/2]).
-export([stop_cluster/1]).
-export([clusters/0]).
-export([init/1]).

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec start_cluster(caravan_cluster:name(), caravan_cluster:config()) ->
          {ok, pid()} | {error, term()}.
start_cluster(Name, Config) ->
    case caravan_cluster_config:check(Config) of
        ok -> start_child(Name, Config);
        Error -> Error
    end.

start_child(Name, Config) ->
    case supervisor:start_child(?MODULE, child(Name, Config)) of
        {error, {already_started, _}} -> {error, already_started};
        {error, already_present} ->
            _ = supervisor:delete_child(?MODULE, Name),
            start_child(Name, Config);
        Other -> Other
    end.

-spec stop_cluster(caravan_cluster:name()) -> ok | {error, not_found}.
stop_cluster(Name) ->
    case supervisor:terminate_child(?MODULE, Name) of
        ok -> supervisor:delete_child(?MODULE, Name);
        {error, not_found} = E -> E
    end.

-spec clusters() -> [caravan_cluster:name()].
clusters() ->
    [Id || {Id, Pid, _, _} <- supervisor:which_children(?MODULE), is_pid(Pid)].

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Configured = application:get_env(caravan, clusters, []),
    {ok, {#{strategy => one_for_one, intensity => 10, period => 60},
          [child(Name, Config) || {Name, Config} <- Configured]}}.

child(Name, Config) ->
    #{id => Name,
      start => {caravan_cluster, start_link, [Name, Config]},
      restart => permanent,
      shutdown => 5000}.
