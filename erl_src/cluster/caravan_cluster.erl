%%% @doc One cluster that forms itself: asks its sources which nodes exist,
%%% connects to the listed nodes it is not connected to, keeps retrying those
%%% that refuse (with backoff, logging at the 1st, 2nd, 4th... failure), and
%%% disconnects nodes that left every source, unless `prune => false'.
%%%
%%% This module is the shell: it runs the sources, turns what happens into
%%% events for caravan_cluster_core (which decides, without side effects;
%%% the node states and the invariants are written there) and performs the
%%% actions the core returns: dials, disconnects, leaves, timers, logs.
%%% What it performs with: caravan_cluster_config (config and defaults),
%%% caravan_cluster_source (a poll), caravan_cluster_leave (leaving and
%%% pruning), caravan_cluster_report (logs, telemetry), caravan_cluster_group
%%% (the clusters of this node).
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
%%% The config, its sources and its defaults: caravan_cluster_config.
-module(caravan_cluster).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

-export([start_link/2]).
-export([members/1]).
-export([status/1]).
-export([stop/1]).
-export([process_name/1]).
-export([all/0]).
-export([leave_node/0]).

-export([init/1]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).
-export([terminate/2]).

-export_type([config/0, name/0, source/0]).

-type name() :: atom().
-type source() :: caravan_cluster_config:source().
-type config() :: caravan_cluster_config:config().
-type mfa_args() :: {module(), atom(), [term()]}.

-record(source, {spec :: source(),
                 watch :: pid() | undefined,      % consul/nomad
                 poller :: pid() | undefined,     % dns/callback, while a lookup runs
                 listed = [] :: [node()],
                 last_success :: integer() | undefined,
                 last_error :: term()}).

%% A cluster asked to leave quietly answers after its departure notice,
%% which waits at most 500 ms for acknowledgements.
-define(LEAVE_QUIETLY_MS, 10000).
%% Retries of a source whose watch crashed wait this long.
-define(RESTART_SOURCE_MS, 500).

-record(state, {name :: name(),
                core :: caravan_cluster_core:core(),
                sources :: #{pos_integer() => #source{}},
                poll_interval :: pos_integer(),
                connect :: mfa_args(),
                disconnect :: mfa_args(),
                list_nodes :: mfa_args(),
                %% Who reports: the name, and whether libcluster started it.
                who :: caravan_cluster_report:who(),
                prune :: boolean(),
                prune_grace :: non_neg_integer(),
                %% Nodes asked to leave by a prune, and when (see prune/3).
                asked = #{} :: #{node() => integer()},
                %% The last failed dial's node and reason, for its log line.
                last_failure :: caravan_cluster_report:failure() | undefined,
                %% The node is stopping: no dial, no disconnect any more.
                halted = false :: boolean(),
                %% Each dial in flight: its node, start time and deadline timer.
                diallers = #{} :: #{pid() => {node(), integer(), reference()}},
                names = none :: caravan_cluster_names:guard()}).

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

%% @doc Every cluster running on this node, started by caravan or through
%% libcluster (pg scopes are shared between connected nodes: local ones only).
-spec all() -> [pid()].
all() ->
    caravan_cluster_group:all().

%% @doc The node is stopping (caravan's prep_stop): every cluster tells
%% every connected node it is leaving and from then on dials and
%% disconnects nothing (libcluster's supervisor outlives this); caravan's
%% clusters are stopped; then the connections the clusters managed are
%% dropped as a leave drops them (docs/global.md: global:disconnect/0 where
%% global would otherwise cascade, the members one by one elsewhere).
%% Returns the nodes dropped.
-spec leave_node() -> [node()].
leave_node() ->
    Members = lists:usort(lists:append([leave_quietly(C) || C <- all()])),
    _ = [caravan_cluster_sup:stop_cluster(C) || C <- caravan_cluster_sup:clusters()],
    Mfa = {erlang, disconnect_node, []},
    Scope = caravan_cluster_core:leave_scope(Members, caravan_cluster_leave:facts(Mfa)),
    caravan_cluster_leave:drop(Members, Scope, Mfa).

%% The members Cluster managed, once it told every connected node it is
%% leaving and stopped dialling; [] if it could not answer.
-spec leave_quietly(pid()) -> [node()].
leave_quietly(Cluster) ->
    try gen_server:call(Cluster, leave_quietly, ?LEAVE_QUIETLY_MS)
    catch exit:_ -> []
    end.

%% @doc The registered name of cluster Name's process.
-spec process_name(name()) -> atom().
process_name(Name) ->
    list_to_atom("caravan_cluster_" ++ atom_to_list(Name)).

%%%---------------------------------------------------------------------------
%%% gen_server callbacks
%%%---------------------------------------------------------------------------

-spec init({name(), config()}) -> {ok, #state{}} | {stop, term()}.
init({Name, Config}) ->
    process_flag(trap_exit, true),
    logger:update_process_metadata(#{caravan => cluster, cluster => Name}),
    case caravan_cluster_config:check(Config) of
        ok ->
            #{sources := Specs, poll_interval := Poll, disconnect := Disconnect,
              list_nodes := ListNodes} = Settings = caravan_cluster_config:settings(Config),
            %% Visible nodes only: hidden ones (remote shells) are never ours.
            ok = net_kernel:monitor_nodes(true),
            Core = caravan_cluster_core:new(
                     (maps:with([self_listed, prune, poll_interval, prune_grace, retry_min,
                                 retry_max], Settings))#{
                       self => node(),
                       leave_facts => caravan_cluster_leave:facts(Disconnect),
                       up => visible(ListNodes)}),
            State = #state{name = Name,
                           core = Core,
                           sources = maps:from_list(
                                       [{I, #source{spec = S}}
                                        || {I, S} <- lists:zip(lists:seq(1, length(Specs)),
                                                               Specs)]),
                           poll_interval = Poll,
                           connect = maps:get(connect, Settings),
                           disconnect = Disconnect,
                           list_nodes = ListNodes,
                           who = #{name => Name, libcluster => maps:get(libcluster, Settings)},
                           prune = maps:get(prune, Settings),
                           prune_grace = maps:get(prune_grace, Settings),
                           names = caravan_cluster_names:new(Settings)},
            _ = caravan_cluster_group:join(),
            {ok, maps:fold(fun(I, _, S) -> start_source(I, S) end, State, State#state.sources)};
        {error, Reason} ->
            {stop, Reason}
    end.

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

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call(members, _From, #state{core = Core} = State) ->
    {reply, caravan_cluster_core:members(Core), State};
handle_call(status, _From, State) ->
    {reply, describe(State), State};
handle_call(leave_quietly, _From, #state{core = Core} = State) ->
    Members = caravan_cluster_core:managed(Core),
    _ = announce(caravan_cluster_core:connected(Core), State),
    {reply, Members, State#state{halted = true}};
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
            Ms = caravan_cluster_source:callback_deadline(State#state.poll_interval),
            {noreply, source_event(I, {error, {callback_timeout, Ms}}, State1)};
        _ ->
            {noreply, State} % it answered in time
    end;
handle_info({connected, Node, Pid, Result}, #state{diallers = D} = State) ->
    case maps:take(Pid, D) of
        {{Node, T0, Deadline}, D1} ->
            _ = erlang:cancel_timer(Deadline, [{async, true}, {info, false}]),
            State1 = State#state{diallers = D1},
            case caravan_cluster_report:connect(Node, report_result(Result), T0,
                                                State#state.who) of
                true ->
                    {noreply, event({connect_result, Node, result(Result)}, State1)};
                {false, Failure} ->
                    {noreply, event({connect_result, Node, false},
                                    State1#state{last_failure = Failure})}
            end;
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
handle_info({'DOWN', _, process, {caravan_clusters, _}, _}, State) ->
    ok = caravan_cluster_group:scope_down(), % caravan_cluster_group's pg scope
    {noreply, State};
handle_info({rejoin_group, Tries}, State) ->
    ok = caravan_cluster_group:rejoin(Tries),
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
            caravan_cluster_report:source_crashed(State#state.who, I, Reason),
            Src = maps:get(I, State#state.sources),
            Sources = (State#state.sources)#{I := Src#source{watch = undefined, poller = undefined}},
            erlang:send_after(?RESTART_SOURCE_MS, self(), {poll, I}),
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
            caravan_cluster_report:no_departure(State#state.who, {Class, Why})
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
depart(#state{core = Core} = State) ->
    _ = announce(caravan_cluster_core:connected(Core), State),
    Stopping = case init:get_status() of
                   {stopping, _} -> true;
                   _ -> false
               end,
    case caravan_cluster_core:departure(Core, Stopping) of
        {leave, Managed, Scope} -> drop(Managed, Scope, State);
        none -> ok
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
            {ok, W} = caravan_watch:start_link(Watched, self(), State#state.names),
            State#state{sources = Sources#{I := Src#source{watch = W}}}
    end.

poll(I, #state{sources = Sources} = State) ->
    case maps:find(I, Sources) of
        {ok, #source{spec = {Kind, Options}, poller = undefined} = Src}
          when Kind =:= dns; Kind =:= callback ->
            {Self, Names} = {self(), State#state.names},
            Pid = spawn_link(fun() ->
                                    Self ! {polled, I, self(),
                                            caravan_cluster_source:discover(Kind, Options, Names)}
                            end),
            _ = case Kind of
                    callback ->
                        Ms = caravan_cluster_source:callback_deadline(State#state.poll_interval),
                        erlang:send_after(Ms, self(), {poll_deadline, I, Pid});
                    dns ->
                        ok
                end,
            State#state{sources = Sources#{I := Src#source{poller = Pid}}};
        {ok, #source{spec = {Kind, _} = Watched, watch = undefined} = Src}
          when Kind =:= consul; Kind =:= nomad ->
            {ok, W} = caravan_watch:start_link(Watched, self(), State#state.names),
            State#state{sources = Sources#{I := Src#source{watch = W}}};
        _ ->
            State
    end.

poll_event({ok, Nodes}) -> {members, Nodes};
poll_event({error, Reason}) -> {error, Reason}.

source_event(I, {members, Nodes}, #state{sources = Sources} = State) ->
    Src = maps:get(I, Sources),
    Src1 = Src#source{listed = Nodes, last_success = erlang:system_time(millisecond),
                      last_error = undefined},
    event({listing, I, Nodes}, State#state{sources = Sources#{I := Src1}});
source_event(I, {error, Reason}, #state{sources = Sources} = State) ->
    Src = maps:get(I, Sources),
    case Src#source.last_error of
        Reason -> ok;
        _ -> caravan_cluster_report:source_failed(State#state.who, I, Reason,
                                                  length(Src#source.listed))
    end,
    event({source_error, I, Reason},
          State#state{sources = Sources#{I := Src#source{last_error = Reason}}}).

%%%---------------------------------------------------------------------------
%%% The core's events and actions
%%%---------------------------------------------------------------------------

event(Event, #state{core = Core} = State) ->
    {Core1, Actions} = caravan_cluster_core:handle(Event, Core),
    lists:foldl(fun perform/2, State#state{core = Core1}, Actions).

perform({log, What, Meta}, #state{who = Who, last_failure = Last} = State) ->
    ok = caravan_cluster_report:log(What, Meta, Who, Last),
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
                                              true -> already;
                                              false -> apply(M, F, A ++ [Node])
                                          end
                                      catch _:E -> {error, E}
                                      end,
                             Self ! {connected, Node, self(), Result}
                     end),
    Ms = caravan_cluster_source:dial_deadline(),
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
    caravan_cluster_report:disconnect(Node, Result, T0, State#state.who),
    State1;
perform({leave, Members, Scope}, State) ->
    _ = announce(Members, State),
    ok = drop(Members, Scope, State),
    State.

%% A leave: Members' connections dropped in Scope, each reported, and the
%% leave logged.
drop(Members, Scope, #state{disconnect = Mfa, who = Who}) ->
    T0 = erlang:monotonic_time(),
    Dropped = caravan_cluster_leave:drop(Members, Scope, Mfa),
    [caravan_cluster_report:disconnect(N, true, T0, Who) || N <- Dropped],
    caravan_cluster_report:left(Who, Dropped).

%% The last-resort prune of Node (docs/global.md, caravan_cluster_leave).
prune(Node, Mfa, #state{asked = Asked, prune_grace = Grace} = State) ->
    {Result, Asked1} = caravan_cluster_leave:prune(Node, Mfa, Asked, Grace),
    {Result, State#state{asked = Asked1}}.

announce(Nodes, #state{name = Name}) ->
    caravan_cluster_leave:announce(Name, Nodes).

%% A dial's result as reported, and as the core hears it: a node the
%% list_nodes MFA already had (not dialled) is a connection.
report_result(already) -> true;
report_result(Result) -> Result.

result(already) -> already;
result(true) -> true.

%%%---------------------------------------------------------------------------
%%% Internal
%%%---------------------------------------------------------------------------

describe(#state{name = Name, sources = Sources, core = Core, names = Names,
               who = #{libcluster := Lib}}) ->
    (caravan_cluster_core:describe(Core))#{
      cluster => Name,
      names => caravan_cluster_names:describe(Names),
      started_by => case Lib of true -> libcluster; false -> caravan end,
      sources => [#{source => element(1, S#source.spec),
                    listed => length(S#source.listed),
                    last_success => S#source.last_success,
                    last_error => S#source.last_error,
                    max_members => caravan_options:max_members(element(2, S#source.spec))}
                  || {_, S} <- lists:sort(maps:to_list(Sources))]}.

server(Name) when is_atom(Name) -> process_name(Name);
server(Pid) when is_pid(Pid) -> Pid.
