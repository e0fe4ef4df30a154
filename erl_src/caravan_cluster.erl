%%% @doc One cluster that forms itself: asks its sources which nodes exist,
%%% connects to those it is not connected to, keeps retrying those that
%%% refuse (with backoff, logging at the 1st, 2nd, 4th... failure), and
%%% disconnects nodes that left every source, unless `prune => false'.
%%%
%%% It only disconnects nodes it manages: nodes its sources listed while
%%% they were connected. A remote shell or a node an operator connected by
%%% hand is never touched. When a source fails, the members it last listed
%%% stand until it answers again.
%%%
%%% A node takes part only while its sources list it too (`self_listed',
%%% default true): a node deregistered from Consul (draining, or failing its
%%% checks) lets go of the cluster at the same time as the others let go of
%%% it, instead of reconnecting to them; a node not yet registered waits
%%% rather than joining and being pruned again. With `self_listed => false'
%%% it connects to whatever is listed, as libcluster's strategies do.
%%%
%%% IMPORTANT: OTP 25's global (prevent_overlapping_partitions) turns a
%%% disconnect into more disconnects: when D drops its connection to A,
%%% D tells the others it lost A, and those still connected to A drop A too.
%%% So a node leaving drops all its connections with global:disconnect/0,
%%% which sends no such message, and the others give a node that left the
%%% listing `prune_grace' ms to leave by itself before they disconnect it.
%%%
%%% A node leaving on purpose (no longer listed, or stopping) first tells
%%% the same-named cluster on each member, and waits up to 500 ms for them
%%% to hear it: they mark it departed and do not dial it again until it
%%% connects itself or a listing drops it. Their own view of the source can
%%% lag by a poll interval (or a check's deregistration delay), and without
%%% the notice they would redial a node that just left, or fill their logs
%%% retrying one that stopped.
%%%
%%% Sources: `{dns, Options}' (polled every `poll_interval' ms),
%%% `{consul, Options}' and `{nomad, Options}' (watched with blocking
%%% queries, see caravan_watch). Each source's options carry its `basename'.
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
-export([check_config/1]).

-export([init/1]).
-export([handle_call/3]).
-export([handle_cast/2]).
-export([handle_info/2]).
-export([terminate/2]).

-export_type([config/0, name/0]).

-type name() :: atom().
-type source() :: {dns, map()} | caravan_watch:source().
-type config() :: #{sources := [source()],
                    poll_interval => pos_integer(),
                    prune => boolean(),
                    self_listed => boolean(),
                    prune_grace => non_neg_integer(),
                    connect => mfa_args(),
                    disconnect => mfa_args(),
                    list_nodes => mfa_args(),
                    retry_min => pos_integer(),
                    retry_max => pos_integer()}.
-type mfa_args() :: {module(), atom(), [term()]}.

-define(DEFAULT_POLL_MS, 5000).
-define(RETRY_MIN_MS, 500).
-define(RETRY_MAX_MS, 30000).
%% Long enough for a departing node to notice (one poll interval, or one
%% blocking-query wakeup) and leave by itself.
-define(PRUNE_GRACE_MS, 5000).
%% How long a leaving node waits for members to acknowledge its departure
%% notice (they answer in microseconds; a member that does not, e.g. an
%% older caravan, only costs this once).
-define(DEPARTURE_ACK_MS, 500).

-record(source, {spec :: source(),
                 watch :: pid() | undefined,      % consul/nomad
                 poller :: pid() | undefined,     % dns, while a lookup runs
                 listed = [] :: [node()],
                 last_success :: integer() | undefined,
                 last_error :: term()}).

-record(state, {name :: name(),
                sources :: #{non_neg_integer() => #source{}},
                poll_interval :: pos_integer(),
                prune :: boolean(),
                self_listed :: boolean(),
                prune_grace :: non_neg_integer(),
                outside = false :: boolean(),
                leaving = #{} :: #{node() => reference()},
                connect :: mfa_args(),
                disconnect :: mfa_args(),
                list_nodes :: mfa_args(),
                retry_min :: pos_integer(),
                retry_max :: pos_integer(),
                managed = #{} :: #{node() => true},
                departed = #{} :: #{node() => true},
                connecting = #{} :: #{node() => pid()},
                retries = #{} :: #{node() => {pos_integer(), reference()}}}).

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

%% @doc Tells the members that this node is leaving (see the module doc);
%% for a node about to stop. Returns how many acknowledged.
-spec announce_departure(name() | pid()) -> non_neg_integer().
announce_departure(Cluster) ->
    gen_server:call(server(Cluster), announce_departure, ?DEPARTURE_ACK_MS + 5000).

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
    case check_config(Config) of
        ok ->
            {ok, Specs} = sources(Config),
            ok = net_kernel:monitor_nodes(true),
            State = #state{name = Name,
                           sources = maps:from_list(
                                       [{I, #source{spec = S}}
                                        || {I, S} <- lists:zip(lists:seq(1, length(Specs)),
                                                               Specs)]),
                           poll_interval = maps:get(poll_interval, Config, ?DEFAULT_POLL_MS),
                           prune = maps:get(prune, Config, true),
                           self_listed = maps:get(self_listed, Config, true),
                           prune_grace = maps:get(prune_grace, Config, ?PRUNE_GRACE_MS),
                           connect = maps:get(connect, Config, {net_kernel, connect_node, []}),
                           disconnect = maps:get(disconnect, Config,
                                                 {erlang, disconnect_node, []}),
                           list_nodes = maps:get(list_nodes, Config,
                                                 {erlang, nodes, [connected]}),
                           retry_min = maps:get(retry_min, Config, ?RETRY_MIN_MS),
                           retry_max = maps:get(retry_max, Config, ?RETRY_MAX_MS)},
            {ok, maps:fold(fun(I, _, S) -> start_source(I, S) end, State, State#state.sources)};
        {error, Reason} ->
            {stop, Reason}
    end.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call(members, _From, State) ->
    Up = sets:from_list([node() | connected(State)]),
    {reply, [N || N <- listed(State), sets:is_element(N, Up)], State};
handle_call(status, _From, State) ->
    {reply, describe(State), State};
handle_call(announce_departure, _From, State) ->
    {reply, announce_departure(maps:keys(State#state.managed), State), State};
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
handle_info({connected, Node, Pid, Result}, #state{connecting = C} = State) ->
    case maps:find(Node, C) of
        {ok, Pid} -> {noreply, connect_result(Node, Result, State#state{connecting = maps:remove(Node, C)})};
        _ -> {noreply, State}
    end;
handle_info({prune, Node, Ref}, #state{leaving = L} = State) ->
    case maps:find(Node, L) of
        {ok, Ref} -> {noreply, prune(Node, State#state{leaving = maps:remove(Node, L)})};
        _ -> {noreply, State}
    end;
handle_info({retry, Node, Ref}, #state{retries = R} = State) ->
    case maps:find(Node, R) of
        {ok, {_, Ref}} -> {noreply, connect(Node, State)};
        _ -> {noreply, State}
    end;
handle_info({caravan_cluster_departing, From, Ref}, State) when is_pid(From) ->
    Node = node(From), % the sender, whatever a message could claim
    From ! {caravan_cluster_departure_seen, Ref},
    ?LOG_NOTICE("caravan_cluster: ~0p: ~0p is leaving", [State#state.name, Node],
                #{node => Node, event => left}),
    {noreply, State#state{departed = (State#state.departed)#{Node => true},
                          retries = cancel(Node, State#state.retries)}};
handle_info({nodeup, Node}, State0) ->
    State = State0#state{departed = maps:remove(Node, State0#state.departed)},
    case lists:member(Node, wanted(State)) of
        true -> {noreply, State#state{managed = (State#state.managed)#{Node => true},
                                      retries = maps:remove(Node, State#state.retries)}};
        false -> {noreply, State}
    end;
handle_info({nodedown, Node}, State) when is_map_key(Node, State#state.departed) ->
    {noreply, State}; % it said it was leaving: no redial, no alarm
handle_info({nodedown, Node}, State) ->
    %% A listed node dropped (its host cut off, or it restarted): keep trying.
    case lists:member(Node, wanted(State)) of
        true ->
            ?LOG_NOTICE("caravan_cluster: ~0p lost connection to ~0p; reconnecting",
                        [State#state.name, Node], #{node => Node, event => nodedown}),
            {noreply, schedule_retry(Node, 1, State)};
        false -> {noreply, State}
    end;
handle_info({'EXIT', Pid, Reason}, State) when Reason =/= normal ->
    %% A watch or poller died: restart that source after a pause.
    case [I || {I, #source{watch = W, poller = P}} <- maps:to_list(State#state.sources),
               W =:= Pid orelse P =:= Pid] of
        [I] ->
            ?LOG_WARNING("caravan_cluster: source ~b of ~0p crashed (~0p); restarting it",
                         [I, State#state.name, Reason]),
            Src = maps:get(I, State#state.sources),
            Sources = (State#state.sources)#{I := Src#source{watch = undefined, poller = undefined}},
            erlang:send_after(State#state.retry_min, self(), {poll, I}),
            {noreply, State#state{sources = Sources}};
        [] ->
            {noreply, State}
    end;
handle_info(_Msg, State) ->
    {noreply, State}.

-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{sources = Sources}) ->
    [caravan_watch:stop(W) || #source{watch = W} <- maps:values(Sources), is_pid(W)],
    ok.

%%%---------------------------------------------------------------------------
%%% Sources
%%%---------------------------------------------------------------------------

sources(#{sources := Specs}) when is_list(Specs), Specs =/= [] ->
    case [S || S <- Specs, not valid_source(S)] of
        [] -> {ok, Specs};
        Bad -> {error, {bad_sources, Bad}}
    end;
sources(#{source := Spec} = Config) ->
    sources(Config#{sources => [Spec]});
sources(_) ->
    {error, {bad_config, "a cluster needs `sources' (or `source')"}}.

%% @doc ok, or why Config cannot make a cluster: {bad_config, Why} without
%% sources, {bad_sources, Specs} for malformed ones, {bad_config, Key, Value}
%% for a policy value of the wrong type (a timer fed a string would crash
%% the cluster over and over instead of refusing it once).
-spec check_config(term()) -> ok | {error, term()}.
check_config(Config) when is_map(Config) ->
    case {sources(Config), bad_policy(Config)} of
        {{ok, _}, []} -> ok;
        {{ok, _}, [{Key, Value} | _]} -> {error, {bad_config, Key, Value}};
        {Error, _} -> Error
    end;
check_config(Config) ->
    {error, {bad_config, Config}}.

bad_policy(Config) ->
    Checks = [{poll_interval, fun is_pos_integer/1}, {retry_min, fun is_pos_integer/1},
              {retry_max, fun is_pos_integer/1},
              {prune_grace, fun(V) -> is_integer(V) andalso V >= 0 end},
              {prune, fun is_boolean/1}, {self_listed, fun is_boolean/1},
              {connect, fun is_mfa_args/1}, {disconnect, fun is_mfa_args/1},
              {list_nodes, fun is_mfa_args/1}],
    [{Key, maps:get(Key, Config)} || {Key, Valid} <- Checks, maps:is_key(Key, Config),
                                     not Valid(maps:get(Key, Config))].

is_pos_integer(V) -> is_integer(V) andalso V > 0.

is_mfa_args({M, F, A}) -> is_atom(M) andalso is_atom(F) andalso is_list(A);
is_mfa_args(_) -> false.

valid_source({Kind, #{basename := _} = Options}) when Kind =:= dns ->
    maps:is_key(query, Options);
valid_source({Kind, #{basename := _, service := _}}) when Kind =:= consul; Kind =:= nomad ->
    true;
valid_source(_) ->
    false.

start_source(I, #state{sources = Sources} = State) ->
    Src = maps:get(I, Sources),
    case Src#source.spec of
        {dns, _} ->
            self() ! {poll, I},
            State;
        Watched ->
            {ok, W} = caravan_watch:start_link(Watched, self()),
            State#state{sources = Sources#{I := Src#source{watch = W}}}
    end.

poll(I, #state{sources = Sources} = State) ->
    case maps:find(I, Sources) of
        {ok, #source{spec = {dns, Options}, poller = undefined} = Src} ->
            Self = self(),
            Pid = spawn_link(fun() -> Self ! {polled, I, self(), caravan_dns:discover(Options)} end),
            State#state{sources = Sources#{I := Src#source{poller = Pid}}};
        {ok, #source{spec = Watched, watch = undefined} = Src} when element(1, Watched) =/= dns ->
            {ok, W} = caravan_watch:start_link(Watched, self()),
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
    reconcile(State#state{sources = Sources#{I := Src1}});
source_event(I, {error, Reason}, #state{sources = Sources} = State) ->
    Src = maps:get(I, Sources),
    Src#source.last_error =:= Reason orelse
        ?LOG_WARNING("caravan_cluster: ~0p source ~b failed: ~0p; keeping its ~b members",
                     [State#state.name, I, Reason, length(Src#source.listed)],
                     #{event => source_error}),
    State#state{sources = Sources#{I := Src#source{last_error = Reason}}}.

%%%---------------------------------------------------------------------------
%%% Connections
%%%---------------------------------------------------------------------------

listed(#state{sources = Sources}) ->
    lists:usort(lists:append([L || #source{listed = L} <- maps:values(Sources)])).

%% The nodes to be connected to: the listed ones, or none while this node
%% is not listed itself (see self_listed above).
wanted(#state{self_listed = false} = State) ->
    listed(State);
wanted(State) ->
    Listed = listed(State),
    case lists:member(node(), Listed) of
        true -> Listed;
        false -> []
    end.

connected(#state{list_nodes = {M, F, A}}) ->
    apply(M, F, A).

reconcile(State0) ->
    Was = State0#state.outside,
    State = case note_outside(State0) of
                #state{outside = true} = Out when not Was -> leave_all(Out);
                Noted -> Noted
            end,
    Listed = wanted(State),
    %% A departed node stays so until a listing no longer names it.
    Departed = maps:with(listed(State), State#state.departed),
    Connected = connected(State),
    ConnectedSet = sets:from_list(Connected),
    Managed = maps:merge(State#state.managed,
                         maps:from_list([{N, true} || N <- Listed,
                                                      sets:is_element(N, ConnectedSet)])),
    State1 = State#state{managed = Managed, departed = Departed},
    ToConnect = [N || N <- Listed, N =/= node(), not sets:is_element(N, ConnectedSet),
                      not maps:is_key(N, State1#state.connecting),
                      not maps:is_key(N, State1#state.retries),
                      not maps:is_key(N, Departed)],
    State2 = lists:foldl(fun connect/2, State1, ToConnect),
    ListedSet = sets:from_list(Listed),
    Gone = [N || N <- maps:keys(Managed), not sets:is_element(N, ListedSet)],
    lists:foldl(fun(N, S) -> leave(N, sets:is_element(N, ConnectedSet), S) end, State2, Gone).

%% A node no source lists any more: stop retrying it, and disconnect it if
%% it is connected and pruning is on, after prune_grace (see IMPORTANT above).
leave(Node, IsConnected, #state{managed = Managed, retries = R} = State) ->
    State1 = State#state{managed = maps:remove(Node, Managed), retries = cancel(Node, R)},
    case IsConnected andalso State#state.prune of
        true ->
            Ref = make_ref(),
            erlang:send_after(State#state.prune_grace, self(), {prune, Node, Ref}),
            State1#state{leaving = (State1#state.leaving)#{Node => Ref}};
        false ->
            State1
    end.

prune(Node, State) ->
    case lists:member(Node, wanted(State)) orelse not lists:member(Node, connected(State)) of
        true ->
            State; % listed again, or it left by itself
        false ->
            {M, F, A} = State#state.disconnect,
            _ = apply(M, F, A ++ [Node]),
            ?LOG_NOTICE("caravan_cluster: ~0p: ~0p left", [State#state.name, Node],
                        #{node => Node, event => left}),
            State
    end.

%% This node is no longer listed: leave the cluster in one step.
leave_all(#state{managed = Managed, prune = true, disconnect = Disconnect} = State)
  when map_size(Managed) > 0 ->
    _ = announce_departure(maps:keys(Managed), State),
    Left = case Disconnect of
               {erlang, disconnect_node, []} ->
                   global:disconnect();
               {M, F, A} ->
                   %% libcluster's own disconnect: it is theirs to call.
                   [begin _ = apply(M, F, A ++ [N]), N end || N <- maps:keys(Managed)]
           end,
    ?LOG_NOTICE("caravan_cluster: ~0p: left the cluster (~b connections dropped)",
                [State#state.name, length(Left)], #{event => left}),
    State#state{managed = #{}, retries = #{}, leaving = #{}};
leave_all(State) ->
    State#state{managed = #{}, retries = #{}}.

%% Sends the departure notice to Nodes' clusters of the same name and
%% waits (bounded) for them to acknowledge; returns how many did.
announce_departure(Nodes, #state{name = Name}) ->
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

connect(Node, #state{connect = {M, F, A}, connecting = C} = State) ->
    Self = self(),
    %% connect_node can block for the whole connect timeout: never here.
    Pid = spawn_link(fun() ->
                             Result = try apply(M, F, A ++ [Node]) catch _:E -> {error, E} end,
                             Self ! {connected, Node, self(), Result}
                     end),
    State#state{connecting = C#{Node => Pid}}.

connect_result(Node, Result, State) ->
    Listed = lists:member(Node, wanted(State)),
    case Result of
        true when Listed ->
            Attempts = attempts(Node, State),
            ?LOG_NOTICE("caravan_cluster: ~0p: ~0p joined~s",
                        [State#state.name, Node, after_failures(Attempts)],
                        #{node => Node, event => joined}),
            State#state{managed = (State#state.managed)#{Node => true},
                        retries = cancel(Node, State#state.retries)};
        _ when Listed ->
            Attempts = attempts(Node, State) + 1,
            is_power_of_two(Attempts) andalso
                ?LOG_WARNING("caravan_cluster: ~0p: cannot connect to ~0p (~b attempts so "
                             "far); retrying", [State#state.name, Node, Attempts],
                             #{node => Node, event => connect_failed}),
            schedule_retry(Node, Attempts, State);
        _ ->
            State
    end.

%% Says once, when it changes, that this node is (or is no longer) outside
%% the listing: the usual reason a cluster does not form is a name that
%% does not match what the source lists.
note_outside(#state{self_listed = false} = State) ->
    State;
note_outside(#state{outside = Was} = State) ->
    Listed = listed(State),
    Outside = not lists:member(node(), Listed),
    case {Was, Outside} of
        {false, true} ->
            ?LOG_NOTICE("caravan_cluster: ~0p: this node (~0p) is not among the ~b nodes its "
                        "sources list; not connecting until it is", [State#state.name, node(),
                                                                      length(Listed)],
                        #{event => outside});
        {true, false} ->
            ?LOG_NOTICE("caravan_cluster: ~0p: this node is listed now; joining",
                        [State#state.name], #{event => listed});
        _ ->
            ok
    end,
    State#state{outside = Outside}.

attempts(Node, #state{retries = R}) ->
    case maps:find(Node, R) of
        {ok, {N, _}} -> N;
        error -> 0
    end.

schedule_retry(Node, _Attempts, State) when is_map_key(Node, State#state.departed) ->
    State; % an attempt that was under way when it said it was leaving
schedule_retry(Node, Attempts, #state{retries = R, retry_min = Min, retry_max = Max} = State) ->
    Delay = min(Max, Min bsl min(Attempts - 1, 16)),
    Jittered = Delay + rand:uniform(Delay div 4 + 1),
    Ref = make_ref(),
    erlang:send_after(Jittered, self(), {retry, Node, Ref}),
    State#state{retries = (cancel(Node, R))#{Node => {Attempts, Ref}}}.

cancel(Node, Retries) -> maps:remove(Node, Retries).

after_failures(0) -> "";
after_failures(N) -> io_lib:format(" after ~b failed attempts", [N]).

is_power_of_two(N) -> N band (N - 1) =:= 0.

describe(#state{name = Name, sources = Sources, retries = R, prune = Prune} = State) ->
    Up = sets:from_list([node() | connected(State)]),
    #{cluster => Name,
      prune => Prune,
      members => length([N || N <- listed(State), sets:is_element(N, Up)]),
      listed => length(listed(State)),
      pending_retries => maps:size(R),
      departed => lists:sort(maps:keys(State#state.departed)),
      sources => [#{source => element(1, S#source.spec),
                    listed => length(S#source.listed),
                    last_success => S#source.last_success,
                    last_error => S#source.last_error}
                  || {_, S} <- lists:sort(maps:to_list(Sources))]}.

server(Name) when is_atom(Name) -> process_name(Name);
server(Pid) when is_pid(Pid) -> Pid.
