%%% @doc Supervisor of this node's registrations: those in the application
%%% environment (`{caravan, [{register, [{consul, #{service => ...}}]}]}') at
%%% start, and those added at run time with caravan:register_node/1. One
%%% caravan_register process each, keyed by {consul, Service}.
-module(caravan_register_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([start_registration/1]).
-export([stop_registration/1]).
-export([registrations/0]).
-export([init/1]).

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @doc Checks Registration (caravan_register_config) and starts it:
%% `{error, {bad_args, Text}}', Text naming the key, before anything is sent.
-spec start_registration(caravan_register_config:registration()) ->
          {ok, pid()} | {error, already_started | {bad_args, binary()} | term()}.
start_registration(Registration) ->
    case caravan_register_config:check(Registration) of
        ok -> start_child(Registration);
        {error, Reason} -> {error, {bad_args, caravan_register_config:text(Reason)}}
    end.

start_child(Registration) ->
    case supervisor:start_child(?MODULE, child(Registration)) of
        {error, {already_started, _}} -> {error, already_started};
        {error, already_present} ->
            _ = supervisor:delete_child(?MODULE, id(Registration)),
            start_child(Registration);
        Other -> Other
    end.

%% @doc Deregisters Service and stops its process.
-spec stop_registration(string() | binary()) -> ok | {error, not_found}.
stop_registration(Service) ->
    Id = {consul, unicode:characters_to_binary(Service)},
    case supervisor:terminate_child(?MODULE, Id) of
        ok -> supervisor:delete_child(?MODULE, Id);
        {error, not_found} = E -> E
    end.

-spec registrations() -> [pid()].
registrations() ->
    try [Pid || {_, Pid, _, _} <- supervisor:which_children(?MODULE), is_pid(Pid)]
    catch exit:_ -> []
    end.

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Configured = application:get_env(caravan, register, []),
    {ok, {#{strategy => one_for_one, intensity => 10, period => 60},
          [child(R) || R <- Configured]}}.

child(Registration) ->
    #{id => id(Registration),
      start => {caravan_register, start_link, [Registration]},
      restart => permanent,
      %% terminate/2 deregisters: one request, its timeout and a margin.
      shutdown => 15000}.

%% A bad service name still gets an id: the child's init refuses it, naming the key.
id({consul, #{service := S}} = Registration) ->
    case caravan_register_config:text_of(S) of
        {ok, B} -> {consul, B};
        error -> Registration
    end;
id(Other) -> Other.
