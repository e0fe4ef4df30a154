%%% @doc What a cluster reports, and how: its log lines (caravan's own, or
%%% libcluster's `[libcluster:TOPOLOGY]' lines for clusters libcluster
%%% started, with Elixir's `inspect' of node names) and its telemetry
%%% events (libcluster 3.5's, or caravan's `[caravan, cluster, ...]').
%%% The shell (caravan_cluster) calls it for each dial, disconnect and
%%% leave and for each `{log, What, Meta}' action of the core; it holds no
%%% state.
-module(caravan_cluster_report).

-include_lib("kernel/include/logger.hrl").

-export([connect/4]).
-export([disconnect/4]).
-export([log/4]).
-export([left/2]).
-export([source_failed/4]).
-export([source_crashed/3]).
-export([no_departure/2]).

-export_type([who/0, failure/0]).

%% The cluster reported on: its name, and whether libcluster started it.
-type who() :: #{name := atom(), libcluster := boolean()}.
%% The last failed dial's node and reason, for its log line.
-type failure() :: {node(), unreachable | not_part_of_network}.

%% @doc A leave dropped Dropped connections.
-spec left(who(), [node()]) -> ok.
left(#{name := Name}, Dropped) ->
    ?LOG_NOTICE("caravan_cluster: ~0p: left the cluster (~b connections dropped)",
                [Name, length(Dropped)], #{event => left}).

%% @doc Source I failed with Reason; it keeps its Listed members.
-spec source_failed(who(), pos_integer(), term(), non_neg_integer()) -> ok.
source_failed(#{name := Name}, I, Reason, Listed) ->
    ?LOG_WARNING("caravan_cluster: ~0p source ~b failed: ~0p; keeping its ~b members",
                 [Name, I, Reason, Listed], #{event => source_error}).

%% @doc Source I's watch crashed with Reason; it is restarted.
-spec source_crashed(who(), pos_integer(), term()) -> ok.
source_crashed(#{name := Name}, I, Reason) ->
    ?LOG_WARNING("caravan_cluster: source ~b of ~0p crashed (~0p); restarting it",
                 [I, Name, Reason]).

%% @doc The departure notice could not be sent at the cluster's end.
-spec no_departure(who(), term()) -> ok.
no_departure(#{name := Name}, Why) ->
    ?LOG_WARNING("caravan_cluster: ~0p could not announce its departure: ~0p",
                 [Name, Why], #{event => left}).

%% Whether Result (what the connect MFA returned) is a connection; emits
%% the dial's telemetry event (every dial: dashboards count them). The log
%% line is the core's to decide (`joined', and `connect_failed' at the
%% 1st, 2nd, 4th... failure): one line per event, see log/3.
-spec connect(node(), term(), integer(), who()) -> true | {false, failure()}.
connect(Node, Result, T0, Who) ->
    Duration = #{duration => erlang:monotonic_time() - T0},
    case Result of
        true ->
            emit(connect, ok, Duration, #{node => Node}, Who),
            true;
        ignored ->
            emit(connect, error, Duration, #{node => Node, reason => not_part_of_network},
                 Who),
            {false, {Node, not_part_of_network}};
        _ ->
            emit(connect, error, Duration, #{node => Node, reason => unreachable}, Who),
            {false, {Node, unreachable}}
    end.

%% A disconnect's telemetry event and, for libcluster's clusters,
%% libcluster's line (theirs replaces caravan's `pruned' line there).
-spec disconnect(node(), term(), integer(), who()) -> ok.
disconnect(Node, Result, T0, Who) ->
    case Result of
        true ->
            emit(disconnect, ok, #{duration => erlang:monotonic_time() - T0},
                 #{node => Node}, Who),
            libcluster_log(info, "disconnected from ~s", [inspect(Node)], Who);
        false ->
            emit(disconnect, error, #{}, #{node => Node, reason => already_disconnected}, Who),
            libcluster_log(warning, "disconnect from ~s failed because we're already "
                           "disconnected", [inspect(Node)], Who);
        ignored ->
            emit(disconnect, error, #{}, #{node => Node, reason => not_part_of_network}, Who),
            libcluster_log(warning, "disconnect from ~s failed because it is not part of the "
                           "network", [inspect(Node)], Who);
        Other ->
            Text = io_lib:format("~0p", [Other]),
            emit(disconnect, error, #{},
                 #{node => Node, reason => unicode:characters_to_binary(Text)}, Who),
            libcluster_log(warning, "disconnect from ~s failed with: ~s",
                           [inspect(Node), Text], Who)
    end.

%% One telemetry event: libcluster 3.5's for clusters libcluster started
%% ([libcluster, connect_node | disconnect_node, ok | error], metadata
%% node, topology and reason), caravan's own for the others ([caravan,
%% cluster, connect | disconnect, ok | error], metadata node, cluster and
%% reason; see the README's telemetry section), so that an application
%% running libcluster topologies too does not count caravan's dials as
%% its own. `departed' is caravan's only: libcluster has no such event.
-spec emit(departed | connect | disconnect, ok | error, map(), map(), who()) -> ok.
emit(departed, _, Measurements, Meta, #{libcluster := false, name := Name}) ->
    telemetry([caravan, cluster, departed], Measurements, Meta#{cluster => Name});
emit(departed, _, _Measurements, _Meta, _Who) ->
    ok;
emit(What, Outcome, Measurements, Meta, #{libcluster := true, name := Name}) ->
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
emit(What, Outcome, Measurements, Meta, #{name := Name}) ->
    telemetry([caravan, cluster, What, Outcome], Measurements, Meta#{cluster => Name}).

%% libcluster's telemetry, when its telemetry library is there (caravan
%% does not depend on it). Loaded first: in interactive mode (iex, mix run)
%% nothing else may have loaded it yet, and function_exported/3 is false for
%% a module not loaded, so the events never fired. Tried once per process
%% (the cluster's): where telemetry is not installed, each try searches
%% every folder of the code path, and a cold start of 100 nodes made 99 of
%% them per node (erl_prim_loader and code_server were a node's busiest
%% processes). Once it is loaded, by this try or by whoever attaches a
%% handler (telemetry:attach/4 is in the same module), events go out.
-spec telemetry([atom()], map(), map()) -> ok.
telemetry(Event, Measurements, Metadata) ->
    _ = erlang:module_loaded(telemetry) orelse load_telemetry_once(),
    case erlang:function_exported(telemetry, execute, 3) of
        true ->
            try telemetry:execute(Event, Measurements, Metadata) of
                _ -> ok
            catch _:_ -> ok
            end;
        false ->
            ok
    end.

-spec load_telemetry_once() -> boolean().
load_telemetry_once() ->
    case get(caravan_telemetry_load_tried) of
        true ->
            false;
        undefined ->
            put(caravan_telemetry_load_tried, true),
            code:ensure_loaded(telemetry) =:= {module, telemetry}
    end.

%% libcluster's own line, `[libcluster:TOPOLOGY] ...', for clusters started
%% through it (caravan's own clusters log the joined/left lines below).
%% No logger domain: OTP's default handler (relx releases log through it)
%% drops every event whose domain is outside [otp, sasl], and a [libcluster]
%% domain hid these lines. libcluster's own lines come through Elixir's
%% Logger, whose handler shows them.
-spec libcluster_log(logger:level(), string(), [term()], who()) -> ok.
libcluster_log(Level, Format, Args, #{libcluster := true, name := Name}) ->
    logger:log(Level, "[libcluster:~s] " ++ Format, [Name | Args], #{caravan => cluster});
libcluster_log(_Level, _Format, _Args, _Who) ->
    ok.

%% How Elixir's inspect/1 prints an atom: `:name' or `:"app-1@10.0.0.1"'.
-spec inspect(atom()) -> string().
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

-spec log(atom(), map(), who(), failure() | undefined) -> ok.
log(joined, #{node := Node}, #{libcluster := true} = Who, _Last) ->
    libcluster_log(info, "connected to ~s", [inspect(Node)], Who);
log(joined, #{node := Node, failures := Failures}, #{name := Name}, _Last) ->
    ?LOG_NOTICE("caravan_cluster: ~0p: ~0p joined~s", [Name, Node, after_failures(Failures)],
                #{node => Node, event => joined});
log(connect_failed, #{node := Node}, #{libcluster := true} = Who, Last) ->
    case Last of
        {Node, not_part_of_network} ->
            libcluster_log(warning, "unable to connect to ~s: not part of network",
                           [inspect(Node)], Who);
        _ ->
            libcluster_log(warning, "unable to connect to ~s", [inspect(Node)], Who)
    end;
log(connect_failed, #{node := Node, attempts := Attempts}, #{name := Name}, _Last) ->
    ?LOG_WARNING("caravan_cluster: ~0p: cannot connect to ~0p (~b attempts so far); retrying",
                 [Name, Node, Attempts], #{node => Node, event => connect_failed});
log(nodedown, #{node := Node}, #{name := Name}, _Last) ->
    ?LOG_NOTICE("caravan_cluster: ~0p lost connection to ~0p; reconnecting", [Name, Node],
                #{node => Node, event => nodedown});
log(departing, #{node := Node}, #{name := Name} = Who, _Last) ->
    emit(departed, ok, #{}, #{node => Node}, Who),
    ?LOG_NOTICE("caravan_cluster: ~0p: ~0p is leaving", [Name, Node],
                #{node => Node, event => left});
log(pruned, _, #{libcluster := true}, _Last) ->
    ok; % libcluster's "disconnected from" line says it
log(pruned, #{node := Node}, #{name := Name}, _Last) ->
    ?LOG_NOTICE("caravan_cluster: ~0p: ~0p left", [Name, Node], #{node => Node, event => left});
log(listed, _, #{name := Name}, _Last) ->
    ?LOG_NOTICE("caravan_cluster: ~0p: this node is listed now; joining", [Name],
                #{event => listed});
log(outside, #{listed := Listed}, #{name := Name}, _Last) ->
    ?LOG_NOTICE("caravan_cluster: ~0p: this node (~0p) is not among the ~b nodes its sources "
                "list; not connecting until it is", [Name, node(), Listed],
                #{event => outside});
log(left_cluster, _, _Who, _Last) ->
    ok; % the leave action logs what it dropped
log(_What, _Meta, _Who, _Last) ->
    ok.

-spec after_failures(non_neg_integer()) -> string().
after_failures(0) -> "";
after_failures(N) -> io_lib:format(" after ~b failed attempts", [N]).

