%%% @doc One cluster that forms itself: asks its sources which nodes exist,
%%% connects to the listed nodes it is not connected to, keeps retrying those
%%% that refuse (with backoff, logging at the 1st, 2nd, 4th... failure), and
%%% disconnects nodes that left every source, unless `prune => false'.
%%%
%%% This module is the shell: it runs the sources, turns what happens into
%%% events for caravan_cluster_core (which decides, without side effects;
%%% the node states and the invariants are written there) and performs the
%%% actions the core returns: dials, disconnects, leaves, timers, logs.
%%%
%%% It only disconnects nodes its sources listed. A node connected by hand,
%%% or by another cluster, is never pruned; a remote shell (a hidden node)
%%% is never even seen. When a source fails, the members it last listed
%%% stand until it answers again.
%%%
%%% A node takes part only while its sources list it too (`self_listed',
%%% default true). Its absence must be confirmed before it leaves: a second
%%% listing without it, or 2 x `poll_interval' ms, whichever comes first (after
%%% a Consul agent restart, checks are critical for a moment: one listing
%%% must not make every node on that host drop out). With
%%% `self_listed => false' it connects to whatever is listed, as libcluster's
%%% strategies do.
%%%
%%% == What a leave drops ==
%%%
%%% OTP 25+'s global (prevent_overlapping_partitions) turns a disconnect into
%%% a cascade, so a leave is global:disconnect/0 where global prevents
%%% overlapping partitions, and member by member elsewhere; a prune asks the
%%% node to leave first. The reasons: docs/global.md.
%%%
%%% A cluster whose process ends (the node stopping, its supervisor shutting
%%% it down, caravan:stop_cluster/1) leaves in terminate/2 unless caravan's
%%% prep_stop already made it leave: in an Elixir application the user's
%%% tree, with libcluster's Cluster.Supervisor, stops before caravan does.
%%%
%%% A node leaving on purpose (no longer listed, or stopping) first tells
%%% the same-named cluster on each member (when stopping: on each connected
%%% node, since one may list it before it lists that one), and waits up to
%%% 500 ms for them to hear it: they mark it departed and do not dial it
%%% again until it connects itself or a listing drops it.
%%%
%%% == Sources ==
%%%
%%% `{dns, Options}' (SRV lookups, polled every `poll_interval' ms);
%%% `{consul, Options}' and `{nomad, Options}' (watched with blocking
%%% queries, see caravan_watch); `{callback, #{basename := B, discover :=
%%% Fun}}': Fun() -> `{ok, [{Host, Port}]} | {error, Reason}', polled like a
%%% DNS source (every `poll_interval' ms, an error keeps the last listing;
%%% junk, or a call not back after 2 x poll_interval (at least 5 s), is an
%%% error);
%%% Host is an IP tuple, an address as text, or a host name (string or
%%% binary). Every source names nodes `Basename-Port@Host' with
%%% caravan_name:node/3: addresses in OTP's text form, host names as given.
%%% `connect', `disconnect' and `list_nodes' may be given as {M, F, A}
%%% (libcluster passes its own); the node is appended to A.
-module(caravan_cluster).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

-export([start_link/2]).
-export([members/1]).
-export([status/1]).
-export([stop/1]).
-export([process_name/1]).
-export([announce_departure/1]).
-export([shutting_down/1]).
-export([check_config/1]).
-export([known_keys/0]).
-export([all/0]).
-export([drop_connections/2]).
-export([default_grace/1]).
-export([has_global_disconnect/0]).
-export([prevents_overlapping_partitions/0]).
-export([managed/1]).

-export([init/1]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).
-export([terminate/2]).

-export_type([config/0, name/0]).

-type name() :: atom().
-type callback_source() :: {callback, #{basename := string() | binary(),
                                        discover := fun(() -> {ok, [{term(), inet:port_number()}]}
                                                                 | {error, term()})}}.
-type source() :: {dns, map()} | caravan_watch:source() | callback_source().
-type config() :: #{sources := [source()],
                    poll_interval => pos_integer(),
                    prune => boolean(),
                    self_listed => boolean(),
                    prune_grace => non_neg_integer(),
                    connect => mfa_args(),
                    disconnect => mfa_args(),
                    list_nodes => mfa_args(),
                    retry_min => pos_integer(),
                    retry_max => pos_integer(),
                    libcluster => boolean()}.
-type mfa_args() :: {module(), atom(), [term()]}.

-define(DEFAULT_POLL_MS, 5000).
-define(RETRY_MIN_MS, 500).
-define(RETRY_MAX_MS, 30000).
%% A callback source's call is abandoned after 2 x poll_interval, or this
%% if longer (see callback_deadline/1).
-define(CALLBACK_DEADLINE_MIN_MS, 5000).
%% How long a leaving node waits for members to acknowledge its departure
%% notice (they answer in microseconds; a member that does not, e.g. an
%% older caravan, only costs this once).
-define(DEPARTURE_ACK_MS, 500).
%% How long a pruned node gets to leave when asked (global:disconnect/0 on
%% it takes a round trip and a few milliseconds) before it is disconnected
%% from here.
-define(REMOTE_LEAVE_MS, 1000).
%% The pg scope and group every cluster joins, whoever started it, so that
%% caravan:status() and the application's prep_stop find them all.
-define(SCOPE, caravan_clusters).
%% A restarted scope is joined again: tried every REJOIN_MS, REJOIN_TRIES
%% times (its supervisor restarts it at once; longer, caravan is stopping).
-define(REJOIN_MS, 100).
-define(REJOIN_TRIES, 20).
-define(GROUP, clusters).

-record(source, {spec :: source(),
                 watch :: pid() | undefined,      % consul/nomad
                 poller :: pid() | undefined,     % dns/callback, while a lookup runs
                 listed = [] :: [node()],
                 last_success :: integer() | undefined,
                 last_error :: term()}).

-record(state, {name :: name(),
                core :: caravan_cluster_core:core(),
                sources :: #{pos_integer() => #source{}},
                poll_interval :: pos_integer(),
                connect :: mfa_args(),
                disconnect :: mfa_args(),
                list_nodes :: mfa_args(),
                libcluster :: boolean(),
                prune :: boolean(),
                prune_grace :: non_neg_integer(),
                %% Nodes asked to leave by a prune, and when (see prune/3).
                asked = #{} :: #{node() => integer()},
                %% The last failed dial's node and reason, for its log line.
                last_failure :: {node(), unreachable | not_part_of_network} | undefined,
                %% The node is stopping: no dial, no disconnect any more.
                halted = false :: boolean(),
                %% Each dial in flight: its node, start time and deadline timer.
                diallers = #{} :: #{pid() => {node(), integer(), reference()}}}).

%%%---------------------------------------------------------------------------
%%% API
%%%---------------------------------------------------------------------------

-spec start_link(name(), config()) -> {ok, pid()} | {error, term()}.
start_link(Name, Config) ->
    gen_server:start_link({local, process_name(Name)}, ?MODULE, {Name, Config}, []).

%% @doc The nodes the cluster's sources list that are connected now (this
%% node included when listed).
-spec members(name() | pid()) -> [node()].
members(Cluster) ->
    gen_server:call(server(Cluster), members, 10000).

-spec status(name() | pid()) -> map().
status(Cluster) ->
    gen_server:call(server(Cluster), status, 10000).

-spec stop(name() | pid()) -> ok.
stop(Cluster) ->
    gen_server:stop(server(Cluster)).

%% @doc Tells every connected node, members and foreign ones alike (a
%% node may list this one before this one lists it), that this node is
%% leaving (see the module doc); for a node about to stop. Returns how
%% many acknowledged.
-spec announce_departure(name() | pid()) -> non_neg_integer().
announce_departure(Cluster) ->
    gen_server:call(server(Cluster), announce_departure, ?DEPARTURE_ACK_MS + 5000).

%% @doc The connected nodes that are the cluster's (listed, or leaving).
-spec managed(name() | pid()) -> [node()].
managed(Cluster) ->
    gen_server:call(server(Cluster), managed, 10000).

%% @doc The node is stopping: from now on the cluster dials and disconnects
%% nothing (its supervisor, caravan's or libcluster's, may outlive this).
-spec shutting_down(name() | pid()) -> ok.
shutting_down(Cluster) ->
    gen_server:call(server(Cluster), shutting_down, 10000).

%% @doc Every cluster running on this node, started by caravan or through
%% libcluster (pg scopes are shared between connected nodes: local ones only).
-spec all() -> [pid()].
all() ->
    try pg:get_local_members(?SCOPE, ?GROUP)
    catch error:badarg -> [] % the scope is not running (caravan stopped)
    end.

%% @doc The registered name of cluster Name's process.
-spec process_name(name()) -> atom().
process_name(Name) ->
    list_to_atom("caravan_cluster_" ++ atom_to_list(Name)).

%% @doc Drops this node's connections for a leave, as the module doc says,
%% and returns the nodes dropped. `global_disconnect': whether
%% global:disconnect/0 exists (false on OTP 25.0); `pop': whether
%% prevent_overlapping_partitions and connect_all are both on.
-spec drop_connections([node()], #{global_disconnect := boolean(), pop := boolean(),
                                   disconnect := mfa_args()}) -> [node()].
drop_connections(Members, #{disconnect := {erlang, disconnect_node, []}, pop := true,
                            global_disconnect := true}) when Members =/= [] ->
    global:disconnect();
drop_connections(Members, #{disconnect := {M, F, A}}) ->
    %% No cascade to fear (pop off), OTP 25.0, or libcluster's own MFA.
    [N || N <- Members, apply(M, F, A ++ [N]) =:= true].

%%%---------------------------------------------------------------------------
%%% Config
%%%---------------------------------------------------------------------------

%% @doc The keys a cluster's config may have.
-spec known_keys() -> [atom()].
known_keys() ->
    [sources, source, poll_interval, prune, self_listed, prune_grace, connect, disconnect,
     list_nodes, retry_min, retry_max, libcluster].

%% @doc ok, or why Config cannot make a cluster: {unknown_key, K} for a key
%% it does not know (a typo would otherwise start a cluster with the
%% default), {bad_config, Why} without sources, {bad_sources, Specs} for
%% malformed ones, {bad_config, Key, Value} for a value of the wrong type.
-spec check_config(term()) -> ok | {error, term()}.
check_config(Config) when is_map(Config) ->
    case {maps:keys(Config) -- known_keys(), sources(Config), bad_policy(Config)} of
        {[K | _], _, _} -> {error, {unknown_key, K}};
        {[], {ok, _}, []} -> ok;
        {[], {ok, _}, [{Key, Value} | _]} -> {error, {bad_config, Key, Value}};
        {[], Error, _} -> Error
    end;
check_config(Config) ->
    {error, {bad_config, Config}}.

bad_policy(Config) ->
    Checks = [{poll_interval, fun is_pos_integer/1}, {retry_min, fun is_pos_integer/1},
              {retry_max, fun is_pos_integer/1},
              {prune_grace, fun(V) -> is_integer(V) andalso V >= 0 end},
              {prune, fun is_boolean/1}, {self_listed, fun is_boolean/1},
              {libcluster, fun is_boolean/1},
              {connect, fun is_mfa_args/1}, {disconnect, fun is_mfa_args/1},
              {list_nodes, fun is_mfa_args/1}],
    [{Key, maps:get(Key, Config)} || {Key, Valid} <- Checks, maps:is_key(Key, Config),
                                     not Valid(maps:get(Key, Config))].

is_pos_integer(V) -> is_integer(V) andalso V > 0.

is_mfa_args({M, F, A}) -> is_atom(M) andalso is_atom(F) andalso is_list(A);
is_mfa_args(_) -> false.

sources(#{sources := _, source := _}) ->
    {error, {bad_config, "give `sources' or `source', not both"}};
sources(#{sources := Specs}) when not is_list(Specs); Specs =:= [] ->
    {error, {bad_config, sources, Specs}};
sources(#{sources := Specs}) ->
    %% Every option of every source, by the rules discover/1 and watch/2
    %% use (caravan_options): a bad one failed every poll, or crashed it.
    case caravan_options:cluster_sources(Specs) of
        ok -> {ok, Specs};
        {error, _} = Error -> Error
    end;
sources(#{source := Spec} = Config) ->
    sources(maps:remove(source, Config#{sources => [Spec]}));
sources(_) ->
    {error, {bad_config, "a cluster needs `sources' (or `source')"}}.

%%%---------------------------------------------------------------------------
%%% gen_server callbacks
%%%---------------------------------------------------------------------------

-spec init({name(), config()}) -> {ok, #state{}} | {stop, term()}.
init({Name, Config}) ->
    process_flag(trap_exit, true),
    logger:update_process_metadata(#{caravan => cluster, cluster => Name}),
    case check_config(Config) of
        ok ->
            {ok, Specs} = sources(Config),
            %% Visible nodes only: hidden ones (remote shells) are never ours.
            ok = net_kernel:monitor_nodes(true),
            Poll = maps:get(poll_interval, Config, ?DEFAULT_POLL_MS),
            ListNodes = maps:get(list_nodes, Config, {erlang, nodes, [connected]}),
            Core = caravan_cluster_core:new(
                     #{self => node(),
                       self_listed => maps:get(self_listed, Config, true),
                       prune => maps:get(prune, Config, true),
                       poll_interval => Poll,
                       prune_grace => maps:get(prune_grace, Config, default_grace(Poll)),
                       retry_min => maps:get(retry_min, Config, ?RETRY_MIN_MS),
                       retry_max => maps:get(retry_max, Config, ?RETRY_MAX_MS),
                       up => visible(ListNodes)}),
            State = #state{name = Name,
                           core = Core,
                           sources = maps:from_list(
                                       [{I, #source{spec = S}}
                                        || {I, S} <- lists:zip(lists:seq(1, length(Specs)),
                                                               Specs)]),
                           poll_interval = Poll,
                           connect = maps:get(connect, Config, {net_kernel, connect_node, []}),
                           disconnect = maps:get(disconnect, Config,
                                                 {erlang, disconnect_node, []}),
                           list_nodes = ListNodes,
                           libcluster = maps:get(libcluster, Config, false),
                           prune = maps:get(prune, Config, true),
                           prune_grace = maps:get(prune_grace, Config, default_grace(Poll))},
            _ = join_group(),
            {ok, maps:fold(fun(I, _, S) -> start_source(I, S) end, State, State#state.sources)};
        {error, Reason} ->
            {stop, Reason}
    end.

%% @doc The default prune grace: a departing node confirms its absence
%% within one poll interval plus a lookup (a second listing), at most 2 x
%% poll_interval (its timer); 3 x poll_interval + 1 s covers that with margin.
-spec default_grace(pos_integer()) -> pos_integer().
default_grace(Poll) -> 3 * Poll + 1000.

%% The connected nodes as the list_nodes MFA sees them, visible ones only.
visible(ListNodes) ->
    Listed = connected(ListNodes),
    [N || N <- nodes(visible), lists:member(N, Listed)].

%% What the list_nodes MFA answers; when it raises or answers something
%% other than a list, the node's own nodes(connected), so that dials and
%% prunes go on as they would with the default MFA instead of all failing.
connected({M, F, A}) ->
    try apply(M, F, A) of
        Nodes when is_list(Nodes) -> Nodes;
        _ -> nodes(connected)
    catch _:_ -> nodes(connected)
    end.

%% Joins caravan's pg scope, and watches it: the scope restarted by
%% caravan's supervisor starts empty, and a cluster outside it would be
%% missing from caravan:status() and from the departure notices at stop.
join_group() ->
    try pg:join(?SCOPE, ?GROUP, self()) of
        ok ->
            _ = erlang:monitor(process, ?SCOPE),
            true
    catch
        %% caravan's supervisor is not running (not listed), or the scope
        %% is going down under a rejoin while caravan stops.
        exit:_ -> false
    end.

%% The scope went down: join it again once it is back, Tries more times
%% ?REJOIN_MS apart; after that caravan itself is stopping or stopped.
rejoin_group(0) ->
    ok;
rejoin_group(Tries) ->
    case join_group() of
        true -> ok;
        false -> erlang:send_after(?REJOIN_MS, self(), {rejoin_group, Tries - 1}), ok
    end.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call(members, _From, #state{core = Core} = State) ->
    {reply, caravan_cluster_core:members(Core), State};
handle_call(status, _From, State) ->
    {reply, describe(State), State};
handle_call(announce_departure, _From, #state{core = Core} = State) ->
    {reply, announce(caravan_cluster_core:connected(Core), State), State};
handle_call(managed, _From, #state{core = Core} = State) ->
    {reply, caravan_cluster_core:managed(Core), State};
handle_call(shutting_down, _From, State) ->
    {reply, ok, State#state{halted = true}};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_request}, State}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({caravan_watch, Watch, Event}, State) ->
    case [I || {I, #source{watch = W}} <- maps:to_list(State#state.sources), W =:= Watch] of
        [I] -> {noreply, source_event(I, Event, State)};
        [] -> {noreply, State}
    end;
handle_info({poll, I}, State) ->
    {noreply, poll(I, State)};
handle_info({polled, I, Pid, Result}, State) ->
    case maps:find(I, State#state.sources) of
        {ok, #source{poller = Pid} = Src} ->
            erlang:send_after(State#state.poll_interval, self(), {poll, I}),
            State1 = State#state{sources = (State#state.sources)#{I := Src#source{poller = undefined}}},
            {noreply, source_event(I, poll_event(Result), State1)};
        _ ->
            {noreply, State}
    end;
handle_info({poll_deadline, I, Pid}, State) ->
    case maps:find(I, State#state.sources) of
        {ok, #source{poller = Pid} = Src} ->
            %% Abandoned: an error like any other (the last listing
            %% stands), and polled again as after an answer.
            unlink(Pid),
            exit(Pid, kill),
            erlang:send_after(State#state.poll_interval, self(), {poll, I}),
            State1 = State#state{sources = (State#state.sources)#{I := Src#source{poller = undefined}}},
            {noreply, source_event(I, {error, {callback_timeout, callback_deadline(State)}},
                                   State1)};
        _ ->
            {noreply, State} % it answered in time
    end;
handle_info({connected, Node, Pid, Result}, #state{diallers = D} = State) ->
    case maps:take(Pid, D) of
        {{Node, T0, Deadline}, D1} ->
            _ = erlang:cancel_timer(Deadline, [{async, true}, {info, false}]),
            {Ok, State1} = report_connect(Node, Result, T0, State),
            {noreply, event({connect_result, Node, Ok}, State1#state{diallers = D1})};
        error ->
            {noreply, State}
    end;
handle_info({dial_deadline, Pid, Ms}, #state{diallers = D} = State) ->
    case maps:get(Pid, D, undefined) of
        {Node, _T0, _} ->
            receive
                {connected, Node, Pid, _} = Answer -> % in just in time
                    handle_info(Answer, State)
            after 0 ->
                    %% Still dialling: a connect MFA that never returns
                    %% would keep its node from being dialled again, for
                    %% good.
                    unlink(Pid),
                    exit(Pid, kill),
                    handle_info({connected, Node, Pid, {error, {dial_timeout, Ms}}}, State)
            end;
        undefined ->
            {noreply, State} % it answered in time
    end;
handle_info({'DOWN', _, process, {?SCOPE, _}, _}, State) ->
    erlang:send_after(?REJOIN_MS, self(), {rejoin_group, ?REJOIN_TRIES}),
    {noreply, State};
handle_info({rejoin_group, Tries}, State) ->
    ok = rejoin_group(Tries),
    {noreply, State};
handle_info({timer, T}, State) ->
    {noreply, event({timer, T}, State)};
handle_info({caravan_cluster_departing, From, Ref}, State) when is_pid(From) ->
    Node = node(From), % the sender, whatever a message could claim
    From ! {caravan_cluster_departure_seen, Ref},
    {noreply, event({departing, Node}, State)};
handle_info({nodeup, Node}, State) ->
    {noreply, event({nodeup, Node}, State)};
handle_info({nodedown, Node}, State) ->
    {noreply, event({nodedown, Node}, State)};
handle_info({'EXIT', Pid, Reason}, #state{diallers = D} = State) when Reason =/= normal,
                                                                     is_map_key(Pid, D) ->
    %% A dial killed before it answered (its body catches everything
    %% else): a failed dial, or the node would never be dialled again.
    {Node, _T0, _} = maps:get(Pid, D),
    handle_info({connected, Node, Pid, {error, Reason}}, State);
handle_info({'EXIT', Pid, Reason}, #state{sources = Sources} = State) ->
    case [I || {I, #source{poller = P}} <- maps:to_list(Sources), P =:= Pid] of
        [I] ->
            %% A poller ended from inside (a callback calling
            %% exit(self(), kill), or exit(self(), normal): a poller that
            %% answered is no source's poller any more, as its answer comes
            %% before its exit): an error like a timeout, logged as any
            %% source error, and polled again at poll_interval.
            erlang:send_after(State#state.poll_interval, self(), {poll, I}),
            State1 = State#state{sources = Sources#{I := (maps:get(I, Sources))#source{
                                                              poller = undefined}}},
            {noreply, source_event(I, {error, {poller_exited, Reason}}, State1)};
        [] when Reason =:= normal ->
            {noreply, State}; % a poller, a dial or a watch that ended its work
        [] ->
            watch_exited(Pid, Reason, State)
    end;
handle_info(_Msg, State) ->
    {noreply, State}.

watch_exited(Pid, Reason, State) ->
    %% A watch died: restart that source after a pause.
    case [I || {I, #source{watch = W, poller = P}} <- maps:to_list(State#state.sources),
               W =:= Pid orelse P =:= Pid] of
        [I] ->
            ?LOG_WARNING("caravan_cluster: source ~b of ~0p crashed (~0p); restarting it",
                         [I, State#state.name, Reason]),
            Src = maps:get(I, State#state.sources),
            Sources = (State#state.sources)#{I := Src#source{watch = undefined, poller = undefined}},
            erlang:send_after(?RETRY_MIN_MS, self(), {poll, I}),
            {noreply, State#state{sources = Sources}};
        [] ->
            {noreply, State}
    end.

-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{sources = Sources, diallers = Diallers} = State) ->
    [caravan_watch:stop(W) || #source{watch = W} <- maps:values(Sources), is_pid(W)],
    %% stop/1 exits normally, which does not end linked processes: a dial
    %% or a callback still running would outlive the cluster (and a dial
    %% connect a node after it stopped).
    [exit(P, kill) || #source{poller = P} <- maps:values(Sources), is_pid(P)],
    [exit(P, kill) || P <- maps:keys(Diallers)],
    try depart(State)
    catch Class:Why ->
            ?LOG_WARNING("caravan_cluster: ~0p could not announce its departure: ~0p",
                         [State#state.name, {Class, Why}], #{event => left})
    end,
    ok.

%% However the cluster ends (the node stopping, its supervisor shutting it
%% down: caravan's, libcluster's, or the user's application's that stops
%% before caravan; caravan:stop_cluster/1; a restart), it leaves as
%% prep_stop makes it leave: every connected node hears it is leaving
%% (so none redials it), then the connections a leave drops are dropped
%% (see the module doc). With `prune => false' while the node keeps
%% running, nothing is disconnected: the notice only. Once prep_stop has
%% done this (halted), nothing more.
depart(#state{halted = true}) ->
    ok;
depart(#state{core = Core, prune = Prune} = State) ->
    Managed = caravan_cluster_core:managed(Core),
    _ = announce(caravan_cluster_core:connected(Core), State),
    Stopping = case init:get_status() of
                   {stopping, _} -> true;
                   _ -> false
               end,
    case Managed =/= [] andalso (Prune orelse Stopping) of
        true ->
            T0 = erlang:monotonic_time(),
            Dropped = drop_connections(Managed,
                                       #{global_disconnect => has_global_disconnect(),
                                         pop => prevents_overlapping_partitions(),
                                         disconnect => State#state.disconnect}),
            [report_disconnect(N, true, T0, State) || N <- Dropped],
            ?LOG_NOTICE("caravan_cluster: ~0p: left the cluster (~b connections dropped)",
                        [State#state.name, length(Dropped)], #{event => left}),
            ok;
        false ->
            ok
    end.

%%%---------------------------------------------------------------------------
%%% Sources
%%%---------------------------------------------------------------------------

start_source(I, #state{sources = Sources} = State) ->
    Src = maps:get(I, Sources),
    case Src#source.spec of
        {Polled, _} when Polled =:= dns; Polled =:= callback ->
            self() ! {poll, I},
            State;
        Watched ->
            {ok, W} = caravan_watch:start_link(Watched, self()),
            State#state{sources = Sources#{I := Src#source{watch = W}}}
    end.

poll(I, #state{sources = Sources} = State) ->
    case maps:find(I, Sources) of
        {ok, #source{spec = {Kind, Options}, poller = undefined} = Src}
          when Kind =:= dns; Kind =:= callback ->
            Self = self(),
            Pid = spawn_link(fun() -> Self ! {polled, I, self(), discover(Kind, Options)} end),
            Kind =:= callback andalso
                erlang:send_after(callback_deadline(State), self(), {poll_deadline, I, Pid}),
            State#state{sources = Sources#{I := Src#source{poller = Pid}}};
        {ok, #source{spec = {Kind, _} = Watched, watch = undefined} = Src}
          when Kind =:= consul; Kind =:= nomad ->
            {ok, W} = caravan_watch:start_link(Watched, self()),
            State#state{sources = Sources#{I := Src#source{watch = W}}};
        _ ->
            State
    end.

%% How long a callback may take: a DNS lookup has the C program's
%% deadline, a user's function none; one that never returns would silence
%% its source for good, with nothing in status() to say so.
callback_deadline(#state{poll_interval = Poll}) ->
    max(2 * Poll, ?CALLBACK_DEADLINE_MIN_MS).

%% How long a dial may take: twice the kernel's net_setuptime, read as
%% net_kernel:connecttime/0 reads it (seconds, a number, at most 120,
%% default 7). By then net_kernel's own setup has given up; only a connect
%% MFA that hangs is still running.
dial_deadline() ->
    Setup = case application:get_env(kernel, net_setuptime) of
                {ok, S} when is_number(S), S >= 120 -> 120000;
                {ok, S} when is_number(S), S > 0 -> round(S * 1000);
                _ -> 7000
            end,
    2 * Setup.

discover(dns, Options) ->
    caravan_dns:discover(Options);
discover(callback, #{basename := Base, discover := Fun}) ->
    try Fun() of
        {ok, Found} when is_list(Found) ->
            callback_nodes(Base, Found);
        {error, Reason} ->
            {error, Reason};
        Other ->
            {error, {bad_callback_result, Other}}
    catch Class:Reason ->
            {error, {callback_failed, Class, Reason}}
    end.

%% The nodes a callback's answer names, or an error for the first entry
%% that names none: an answer with junk in it is not a listing (dropping
%% the junk could empty the listing, and prune every member).
callback_nodes(Base, Found) ->
    try {ok, lists:usort(callback_entries(Base, Found))}
    catch throw:{bad_entry, Entry} -> {error, {bad_callback_result, Entry}}
    end.

%% An improper list ([Entry | x]) is an answer that lists nothing: its
%% tail is the bad entry (a comprehension over it raised bad_generator in
%% the poller, which was restarted every 500 ms).
callback_entries(_Base, []) -> [];
callback_entries(Base, [Entry | Rest]) -> [callback_node(Base, Entry) | callback_entries(Base, Rest)];
callback_entries(_Base, Tail) -> throw({bad_entry, Tail}).

callback_node(Base, {Host, Port} = Entry) when is_integer(Port), Port >= 1, Port =< 65535,
                                               (is_tuple(Host) orelse is_list(Host)
                                                orelse is_binary(Host)) ->
    %% The naming rule raises on what it cannot name (not UTF-8, an
    %% address tuple that is none, a name longer than an atom can be).
    try caravan_name:node(Base, Port, Host)
    catch error:_ -> throw({bad_entry, Entry})
    end;
callback_node(_Base, Entry) ->
    throw({bad_entry, Entry}).

poll_event({ok, Nodes}) -> {members, Nodes};
poll_event({error, Reason}) -> {error, Reason}.

source_event(I, {members, Nodes}, #state{sources = Sources} = State) ->
    Src = maps:get(I, Sources),
    Src1 = Src#source{listed = Nodes, last_success = erlang:system_time(millisecond),
                      last_error = undefined},
    event({listing, I, Nodes}, State#state{sources = Sources#{I := Src1}});
source_event(I, {error, Reason}, #state{sources = Sources} = State) ->
    Src = maps:get(I, Sources),
    Src#source.last_error =:= Reason orelse
        ?LOG_WARNING("caravan_cluster: ~0p source ~b failed: ~0p; keeping its ~b members",
                     [State#state.name, I, Reason, length(Src#source.listed)],
                     #{event => source_error}),
    event({source_error, I, Reason},
          State#state{sources = Sources#{I := Src#source{last_error = Reason}}}).

%%%---------------------------------------------------------------------------
%%% The core's events and actions
%%%---------------------------------------------------------------------------

event(Event, #state{core = Core} = State) ->
    {Core1, Actions} = caravan_cluster_core:handle(Event, Core),
    lists:foldl(fun perform/2, State#state{core = Core1}, Actions).

perform({log, What, Meta}, State) ->
    log(What, Meta, State),
    State;
perform({arm, Ms, {retry, _, _} = T}, State) ->
    %% Jitter, so that nodes that lost the same peer do not redial in step.
    erlang:send_after(Ms + rand:uniform(Ms div 4 + 1), self(), {timer, T}),
    State;
perform({arm, Ms, T}, State) ->
    erlang:send_after(Ms, self(), {timer, T}),
    State;
perform(_Action, #state{halted = true} = State) ->
    State; % the node is stopping: leave its connections to prep_stop
perform({connect, Node}, #state{connect = {M, F, A}, list_nodes = {LM, LF, LA},
                                diallers = D} = State) ->
    Self = self(),
    %% connect_node can block for the whole connect timeout: never here.
    %% As libcluster's connect_nodes/4: a node list_nodes has is not dialled.
    Pid = spawn_link(fun() ->
                             Result = try
                                          case lists:member(Node, connected({LM, LF, LA})) of
                                              true -> true;
                                              false -> apply(M, F, A ++ [Node])
                                          end
                                      catch _:E -> {error, E}
                                      end,
                             Self ! {connected, Node, self(), Result}
                     end),
    Ms = dial_deadline(),
    Deadline = erlang:send_after(Ms, self(), {dial_deadline, Pid, Ms}),
    State#state{diallers = D#{Pid => {Node, erlang:monotonic_time(), Deadline}}};
perform({disconnect, Node}, #state{disconnect = {M, F, A}, list_nodes = {LM, LF, LA}} = State) ->
    T0 = erlang:monotonic_time(),
    %% As libcluster's disconnect_nodes/4: only a node list_nodes has.
    {Result, State1} = try
                           case lists:member(Node, connected({LM, LF, LA})) of
                               true -> prune(Node, {M, F, A}, State);
                               false -> {false, State}
                           end
                       catch _:E -> {{error, E}, State}
                       end,
    report_disconnect(Node, Result, T0, State1),
    State1;
perform({leave, Members}, State) ->
    _ = announce(Members, State),
    T0 = erlang:monotonic_time(),
    Dropped = drop_connections(Members, #{global_disconnect => has_global_disconnect(),
                                          pop => prevents_overlapping_partitions(),
                                          disconnect => State#state.disconnect}),
    [report_disconnect(N, true, T0, State) || N <- Dropped],
    ?LOG_NOTICE("caravan_cluster: ~0p: left the cluster (~b connections dropped)",
                [State#state.name, length(Dropped)], #{event => left}),
    State.

%% The last-resort prune of Node (see the module doc). Where global
%% would turn this node's disconnect into a cascade, Node is asked to leave
%% instead: global:disconnect/0 run on it drops it from every node in one
%% step, without `lost_connection' messages, so the staying members keep
%% each other. It is disconnected from here, which may cascade, when it is
%% still connected after ?REMOTE_LEAVE_MS (an OTP 25.0 node, a node too
%% busy to answer), and when it was asked less than 2 x prune_grace ago:
%% something brings it back (a cluster of its own meshes it with a node
%% connected to ours, and connect_all with us), and asking again would
%% only go round that loop; the cascade's partition ends it. A libcluster
%% topology's own disconnect MFA is called as it is: theirs to decide.
prune(Node, {erlang, disconnect_node, []} = Mfa, #state{asked = Asked} = State) ->
    Now = erlang:monotonic_time(millisecond),
    Recently = case maps:find(Node, Asked) of
                   {ok, T} -> Now - T < 2 * State#state.prune_grace;
                   error -> false
               end,
    Asked1 = maps:filter(fun(_, T) -> Now - T < 2 * State#state.prune_grace end, Asked),
    case prevents_overlapping_partitions() andalso not Recently of
        true ->
            ok = ask_to_leave(Node),
            State1 = State#state{asked = Asked1#{Node => Now}},
            case wait_gone(Node, Now + ?REMOTE_LEAVE_MS) of
                true -> {true, State1};
                false -> {prune_here(Node, Mfa), State1}
            end;
        false ->
            {prune_here(Node, Mfa), State#state{asked = Asked1}}
    end;
prune(Node, Mfa, State) ->
    {prune_here(Node, Mfa), State}.

%% global:disconnect/0 run on Node, through its rpc server (rex) as
%% rpc:cast/4 asked older nodes to (the `{cast, M, F, A, GroupLeader}'
%% cast every OTP release's rex still serves), sent with `noconnect':
%% erpc:cast/4 would connect again to a node that has just left, when
%% another member asked it first, and global would mesh it with everyone
%% once more.
ask_to_leave(Node) ->
    _ = erlang:send({rex, Node}, {'$gen_cast', {cast, global, disconnect, [], user}},
                    [noconnect]),
    ok.

prune_here(Node, {M, F, A}) ->
    apply(M, F, A ++ [Node]).

wait_gone(Node, Deadline) ->
    case lists:member(Node, nodes(connected)) of
        false ->
            true;
        true ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> false;
                false -> timer:sleep(10), wait_gone(Node, Deadline)
            end
    end.

%% @doc Whether global:disconnect/0 exists (OTP 25.1 and later).
-spec has_global_disconnect() -> boolean().
has_global_disconnect() ->
    _ = code:ensure_loaded(global),
    erlang:function_exported(global, disconnect, 0).

%% @doc Whether global turns a lost connection into more (see module doc).
-spec prevents_overlapping_partitions() -> boolean().
prevents_overlapping_partitions() ->
    application:get_env(kernel, prevent_overlapping_partitions, true) =:= true andalso
        application:get_env(kernel, connect_all, true) =:= true andalso
        init:get_argument(connect_all) =/= {ok, [["false"]]}.

%% Sends the departure notice to Nodes' clusters of the same name and
%% waits (bounded) for them to acknowledge; returns how many did.
announce(Nodes, #state{name = Name}) ->
    Ref = make_ref(),
    Notice = {caravan_cluster_departing, self(), Ref},
    Sent = [N || N <- Nodes, N =/= node(),
                 erlang:send({process_name(Name), N}, Notice, [noconnect]) =:= ok],
    collect_acks(Ref, length(Sent), erlang:monotonic_time(millisecond) + ?DEPARTURE_ACK_MS).

collect_acks(_Ref, 0, _Deadline) ->
    0;
collect_acks(Ref, Pending, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {caravan_cluster_departure_seen, Ref} -> 1 + collect_acks(Ref, Pending - 1, Deadline)
    after Left -> 0
    end.

%%%---------------------------------------------------------------------------
%%% Reporting: logs, and libcluster's telemetry events
%%%---------------------------------------------------------------------------

%% Whether Result (what the connect MFA returned) is a connection; emits
%% the dial's telemetry event (every dial: dashboards count them). The log
%% line is the core's to decide (`joined', and `connect_failed' at the
%% 1st, 2nd, 4th... failure): one line per event, see log/3.
report_connect(Node, Result, T0, State) ->
    Duration = #{duration => erlang:monotonic_time() - T0},
    case Result of
        true ->
            emit(connect, ok, Duration, #{node => Node}, State),
            {true, State};
        ignored ->
            emit(connect, error, Duration, #{node => Node, reason => not_part_of_network},
                 State),
            {false, State#state{last_failure = {Node, not_part_of_network}}};
        _ ->
            emit(connect, error, Duration, #{node => Node, reason => unreachable}, State),
            {false, State#state{last_failure = {Node, unreachable}}}
    end.

%% A disconnect's telemetry event and, for libcluster's clusters,
%% libcluster's line (theirs replaces caravan's `pruned' line there).
report_disconnect(Node, Result, T0, State) ->
    case Result of
        true ->
            emit(disconnect, ok, #{duration => erlang:monotonic_time() - T0},
                 #{node => Node}, State),
            libcluster_log(info, "disconnected from ~s", [inspect(Node)], State);
        false ->
            emit(disconnect, error, #{}, #{node => Node, reason => already_disconnected}, State),
            libcluster_log(warning, "disconnect from ~s failed because we're already "
                           "disconnected", [inspect(Node)], State);
        ignored ->
            emit(disconnect, error, #{}, #{node => Node, reason => not_part_of_network}, State),
            libcluster_log(warning, "disconnect from ~s failed because it is not part of the "
                           "network", [inspect(Node)], State);
        Other ->
            Text = io_lib:format("~0p", [Other]),
            emit(disconnect, error, #{},
                 #{node => Node, reason => unicode:characters_to_binary(Text)}, State),
            libcluster_log(warning, "disconnect from ~s failed with: ~s",
                           [inspect(Node), Text], State)
    end.

%% One telemetry event: libcluster 3.5's for clusters libcluster started
%% ([libcluster, connect_node | disconnect_node, ok | error], metadata
%% node, topology and reason), caravan's own for the others ([caravan,
%% cluster, connect | disconnect, ok | error], metadata node, cluster and
%% reason; see the README's telemetry section), so that an application
%% running libcluster topologies too does not count caravan's dials as
%% its own. `departed' is caravan's only: libcluster has no such event.
emit(departed, _, Measurements, Meta, #state{libcluster = false, name = Name}) ->
    telemetry([caravan, cluster, departed], Measurements, Meta#{cluster => Name});
emit(departed, _, _Measurements, _Meta, _State) ->
    ok;
emit(What, Outcome, Measurements, Meta, #state{libcluster = true, name = Name}) ->
    Event = case What of
                connect -> connect_node;
                disconnect -> disconnect_node
            end,
    %% libcluster's ok events carry the duration, its error events nothing.
    M = case Outcome of
            ok -> Measurements;
            error -> #{}
        end,
    telemetry([libcluster, Event, Outcome], M, Meta#{topology => Name});
emit(What, Outcome, Measurements, Meta, #state{name = Name}) ->
    telemetry([caravan, cluster, What, Outcome], Measurements, Meta#{cluster => Name}).

%% libcluster's telemetry, when its telemetry library is there (caravan
%% does not depend on it). Loaded first: in interactive mode (iex, mix run)
%% nothing else may have loaded it yet, and function_exported/3 is false for
%% a module not loaded, so the events never fired.
telemetry(Event, Measurements, Metadata) ->
    _ = erlang:module_loaded(telemetry) orelse code:ensure_loaded(telemetry),
    case erlang:function_exported(telemetry, execute, 3) of
        true ->
            try telemetry:execute(Event, Measurements, Metadata)
            catch _:_ -> ok
            end;
        false ->
            ok
    end.

%% libcluster's own line, `[libcluster:TOPOLOGY] ...', for clusters started
%% through it (caravan's own clusters log the joined/left lines below).
%% No logger domain: OTP's default handler (relx releases log through it)
%% drops every event whose domain is outside [otp, sasl], and a [libcluster]
%% domain hid these lines. libcluster's own lines come through Elixir's
%% Logger, whose handler shows them.
libcluster_log(Level, Format, Args, #state{libcluster = true, name = Name}) ->
    logger:log(Level, "[libcluster:~s] " ++ Format, [Name | Args], #{caravan => cluster});
libcluster_log(_Level, _Format, _Args, _State) ->
    ok.

%% How Elixir's inspect/1 prints an atom: `:name' or `:"app-1@10.0.0.1"'.
inspect(Atom) ->
    Text = atom_to_list(Atom),
    Plain = lists:all(fun(C) -> (C >= $a andalso C =< $z) orelse (C >= $A andalso C =< $Z)
                                    orelse (C >= $0 andalso C =< $9) orelse C =:= $_
                                    orelse C =:= $@ end, Text)
        andalso Text =/= [] andalso hd(Text) >= $a andalso hd(Text) =< $z,
    case Plain of
        true -> ":" ++ Text;
        false -> ":\"" ++ Text ++ "\""
    end.

log(joined, #{node := Node}, #state{libcluster = true} = State) ->
    libcluster_log(info, "connected to ~s", [inspect(Node)], State);
log(joined, #{node := Node, failures := Failures}, #state{name = Name}) ->
    ?LOG_NOTICE("caravan_cluster: ~0p: ~0p joined~s", [Name, Node, after_failures(Failures)],
                #{node => Node, event => joined});
log(connect_failed, #{node := Node}, #state{libcluster = true, last_failure = Last} = State) ->
    case Last of
        {Node, not_part_of_network} ->
            libcluster_log(warning, "unable to connect to ~s: not part of network",
                           [inspect(Node)], State);
        _ ->
            libcluster_log(warning, "unable to connect to ~s", [inspect(Node)], State)
    end;
log(connect_failed, #{node := Node, attempts := Attempts}, #state{name = Name}) ->
    ?LOG_WARNING("caravan_cluster: ~0p: cannot connect to ~0p (~b attempts so far); retrying",
                 [Name, Node, Attempts], #{node => Node, event => connect_failed});
log(nodedown, #{node := Node}, #state{name = Name}) ->
    ?LOG_NOTICE("caravan_cluster: ~0p lost connection to ~0p; reconnecting", [Name, Node],
                #{node => Node, event => nodedown});
log(departing, #{node := Node}, #state{name = Name} = State) ->
    emit(departed, ok, #{}, #{node => Node}, State),
    ?LOG_NOTICE("caravan_cluster: ~0p: ~0p is leaving", [Name, Node],
                #{node => Node, event => left});
log(pruned, _, #state{libcluster = true}) ->
    ok; % libcluster's "disconnected from" line says it
log(pruned, #{node := Node}, #state{name = Name}) ->
    ?LOG_NOTICE("caravan_cluster: ~0p: ~0p left", [Name, Node], #{node => Node, event => left});
log(listed, _, #state{name = Name}) ->
    ?LOG_NOTICE("caravan_cluster: ~0p: this node is listed now; joining", [Name],
                #{event => listed});
log(outside, #{listed := Listed}, #state{name = Name}) ->
    ?LOG_NOTICE("caravan_cluster: ~0p: this node (~0p) is not among the ~b nodes its sources "
                "list; not connecting until it is", [Name, node(), Listed],
                #{event => outside});
log(left_cluster, _, _State) ->
    ok; % the leave action logs what it dropped
log(_What, _Meta, _State) ->
    ok.

after_failures(0) -> "";
after_failures(N) -> io_lib:format(" after ~b failed attempts", [N]).

describe(#state{name = Name, sources = Sources, core = Core, libcluster = Lib}) ->
    (caravan_cluster_core:describe(Core))#{
      cluster => Name,
      started_by => case Lib of true -> libcluster; false -> caravan end,
      sources => [#{source => element(1, S#source.spec),
                    listed => length(S#source.listed),
                    last_success => S#source.last_success,
                    last_error => S#source.last_error}
                  || {_, S} <- lists:sort(maps:to_list(Sources))]}.

server(Name) when is_atom(Name) -> process_name(Name);
server(Pid) when is_pid(Pid) -> Pid.
