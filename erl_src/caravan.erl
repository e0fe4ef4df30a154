%%% @doc caravan's public API.
%%%
%%% Distribution without epmd is plugged in with vm.args flags (see README);
%%% this module answers questions about it (dist_port/1), looks up and
%%% discovers nodes, starts clusters and watches, and exports the shared types.
-module(caravan).

-export([dist_port/1]).
-export([lookup_srv/2]).
-export([discover/1]).
-export([watch/2]).
-export([unwatch/1]).
-export([start_cluster/2]).
-export([stop_cluster/1]).
-export([members/1]).
-export([status/0]).
-export([register_node/1]).
-export([deregister_node/1]).
-export([info/0]).

-export_type([port_number/0, error/0]).

-type port_number() :: 1..65535.
%% `{Reason, Detail}' from the naming rule (empty_name, name_too_long,
%% invalid_name, port_out_of_range, no_port) or from the program; or a
%% transport failure (unavailable, timeout, overload, {port_exited, _}).
-type error() :: {atom(), binary()} | caravan_port:error_reason().

%% How long a dist_port or info question may take before it is an error.
-define(CALL_TIMEOUT_MS, 5000).
%% caravan_sup's program instance, the one discovery uses.
-define(LOOKUP_OWNER, caravan_lookup).

%% @doc The distribution port of a node or node name, by caravan's rule:
%% `dist_port('app-4370@10.0.0.5') -> {ok, 4370}'. Uses this node's epmd-side
%% cache when caravan is the epmd module, else asks the C program.
-spec dist_port(NodeOrName) -> {ok, port_number()} | {error, error()} when
      NodeOrName :: node() | string() | binary().
dist_port(NodeOrName) ->
    case whereis(caravan_epmd) of
        Pid when is_pid(Pid) ->
            caravan_epmd:port_of(element(1, caravan_name:split(NodeOrName)));
        undefined ->
            {Name, _Host} = caravan_name:split(NodeOrName),
            Args = #{name => unicode:characters_to_binary(Name),
                     default => caravan_config:default_port()},
            caravan_port:call(?LOOKUP_OWNER, dist_port, Args, ?CALL_TIMEOUT_MS)
    end.

%% @doc SRV records of Name with their targets' addresses, from the DNS
%% servers in Options (default: the local Consul agent, 127.0.0.1:8600).
%% See caravan_dns for the options.
-spec lookup_srv(Name, Options) -> {ok, [caravan_dns:srv_record()]} | {error, error()} when
      Name :: string() | binary(),
      Options :: caravan_dns:options().
lookup_srv(Name, Options) ->
    caravan_dns:lookup_srv(Name, Options).

%% @doc The nodes a discovery source lists right now, named
%% `Basename-PORT@ADDRESS'. Options are checked first (caravan_options): a
%% key the source does not take, a required one missing or a bad value is
%% `{error, {bad_args, Text}}', Text naming the key.
-spec discover(Source) -> {ok, [node()]} | {error, error()} when
      Source :: {dns, #{query := string() | binary(), basename => string() | binary(),
                        type => caravan_dns:type() | [caravan_dns:type()],
                        port => inet:port_number(), _ => _}}
              | caravan_watch:source().
discover(Source) ->
    case caravan_options:check_source(Source) of
        ok -> discover_checked(Source);
        {error, Reason} -> {error, {bad_args, caravan_options:text(kind(Source), Reason)}}
    end.

discover_checked({dns, Options}) ->
    caravan_dns:discover(Options);
discover_checked({consul, Options}) ->
    caravan_consul:discover(Options);
discover_checked({nomad, Options}) ->
    caravan_nomad:discover(Options);
discover_checked({callback, _}) ->
    {error, {bad_args, <<"options: a callback source is for clusters; call its fun">>}}.

kind({Kind, _}) when is_atom(Kind) -> Kind;
kind(_) -> source.

%% @doc Watches a Consul or Nomad source with blocking queries. Subscriber
%% receives `{caravan_watch, Watch, {members, [node()]}}' whenever the list
%% changes (first answer included) and `{caravan_watch, Watch, {error, R}}'
%% when the source starts failing. The watch ends with its subscriber.
%% Refused before any watch starts: a source that is not consul or nomad
%% (`{bad_source, S}'), an unknown key (`{unknown_key, K}'), a required key
%% missing (`{missing_key, K}'), a bad value or a subscriber that is not a
%% pid (`{bad_config, Key, Value}'); see caravan_options.
-spec watch(Source, Subscriber) -> {ok, pid()} | {error, term()} when
      Source :: caravan_watch:source(),
      Subscriber :: pid().
watch(Source, Subscriber) ->
    case caravan_options:check_watch(Source, Subscriber) of
        ok -> caravan_watch_sup:start_watch(Source, Subscriber);
        {error, _} = Error -> Error
    end.

-spec unwatch(Watch :: pid()) -> ok.
unwatch(Watch) ->
    caravan_watch:stop(Watch).

%% @doc Starts a cluster that forms itself from Config's sources (see
%% caravan_cluster). Clusters in the application environment start with
%% the application.
-spec start_cluster(Name, Config) -> {ok, pid()} | {error, term()} when
      Name :: caravan_cluster:name(),
      Config :: caravan_cluster:config().
start_cluster(Name, Config) ->
    caravan_cluster_sup:start_cluster(Name, Config).

-spec stop_cluster(caravan_cluster:name()) -> ok | {error, not_found}.
stop_cluster(Name) ->
    caravan_cluster_sup:stop_cluster(Name).

%% @doc The nodes of cluster Name that its sources list and that are
%% connected now; `{error, not_found}' when no cluster of that name runs
%% (as stop_cluster/1 answers).
-spec members(caravan_cluster:name()) -> [node()] | {error, not_found}.
members(Name) ->
    try caravan_cluster:members(Name)
    catch
        %% Not running, or stopped while asked.
        exit:{Gone, {gen_server, call, _}} when Gone =:= noproc; Gone =:= normal;
                                               Gone =:= shutdown ->
            {error, not_found};
        exit:{{shutdown, _}, {gen_server, call, _}} ->
            {error, not_found}
    end.

%% @doc Per cluster, those caravan started and those started through
%% libcluster alike (`started_by'): its sources with their last success and
%% last error, member count, retries pending, departed, leaving and foreign
%% nodes, prune policy and grace, and whether this node is `in', `absent'
%% (unlisted, awaiting confirmation) or `out'. Sorted by cluster name.
%% Then, per registration of this node (`registration => consul'): service,
%% id, state (registering, registered, retrying, deregistered), last_error,
%% last_success, attempts; see caravan_register.
-spec status() -> [map()].
status() ->
    lists:sort(fun(#{cluster := A}, #{cluster := B}) -> A =< B end,
               lists:append([try [caravan_cluster:status(Pid)] catch exit:_ -> [] end
                             || Pid <- caravan_cluster:all()]))
        ++ caravan_register:status_all().

%% @doc Registers this node with the local Consul agent and keeps it
%% registered (caravan_register): `{consul, #{service => "app-dist", tags,
%% meta, check, ...}}', as in the `register' environment key. Refused with
%% `{error, {bad_args, Text}}', Text naming the key, before anything is sent.
-spec register_node(Registration) -> {ok, pid()} | {error, term()} when
      Registration :: caravan_register_config:registration().
register_node(Registration) ->
    caravan_register_sup:start_registration(Registration).

%% @doc Deregisters Service and stops keeping it registered.
-spec deregister_node(Service :: string() | binary()) -> ok | {error, not_found}.
deregister_node(Service) ->
    caravan_register_sup:stop_registration(Service).

%% @doc Version and counters of the C programs this node runs.
-spec info() -> #{atom() => {ok, map()} | {error, error()}}.
info() ->
    Owners = [{lookup, ?LOOKUP_OWNER}, {epmd, caravan_epmd:port_owner()}],
    maps:from_list([{Role, with_owner(Owner, caravan_port:call(Owner, info, #{},
                                                               ?CALL_TIMEOUT_MS))}
                    || {Role, Owner} <- Owners]).

%% The owner's counters (cancels it sent, replies it dropped) under `owner'.
-spec with_owner(atom() | pid(), {ok, term()} | {error, term()}) -> {ok, term()} | {error, term()}.
with_owner(Owner, {ok, Info}) when is_map(Info) ->
    case caravan_port:counters(Owner) of
        {ok, Counters} -> {ok, Info#{owner => Counters}};
        {error, _} -> {ok, Info}
    end;
with_owner(_Owner, Other) ->
    Other.
