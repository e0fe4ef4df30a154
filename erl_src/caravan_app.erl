%%% @doc The caravan application: starts caravan_sup.
-module(caravan_app).
-behaviour(application).

-export([start/2]).
-export([prep_stop/1]).
-export([stop/1]).

-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_Type, _Args) ->
    caravan_sup:start_link().

%% @doc When the node itself is stopping, leave every cluster tidily, those
%% caravan started and those started through libcluster alike (all join
%% one pg group, see caravan_cluster:all/0). Each tells its members first,
%% so nothing redials a node on its way out, and then dials and
%% disconnects nothing more (libcluster's supervisor outlives this). Then
%% the connections are dropped as a leave drops them (see caravan_cluster's
%% module doc: global:disconnect/0 where global would otherwise cascade,
%% the members one by one on OTP 25.0). Stopping only the application
%% leaves connections as they are. A cluster that is gone before this runs
%% (libcluster's Cluster.Supervisor in an application that stops before
%% caravan) left by itself, in caravan_cluster's terminate/2.
-spec prep_stop(term()) -> term().
prep_stop(State) ->
    case init:get_status() of
        {stopping, _} ->
            Clusters = caravan_cluster:all(),
            Members = lists:usort(lists:append([leave_quietly(C) || C <- Clusters])),
            _ = [caravan_cluster_sup:stop_cluster(C) || C <- caravan_cluster_sup:clusters()],
            _ = caravan_cluster:drop_connections(
                  Members, #{global_disconnect => caravan_cluster:has_global_disconnect(),
                             pop => caravan_cluster:prevents_overlapping_partitions(),
                             disconnect => {erlang, disconnect_node, []}}),
            State;
        _ ->
            State
    end.

%% The members Cluster told it is leaving; [] if it could not answer.
leave_quietly(Cluster) ->
    try
        Members = caravan_cluster:managed(Cluster),
        _ = caravan_cluster:announce_departure(Cluster),
        ok = caravan_cluster:shutting_down(Cluster),
        Members
    catch exit:_ -> []
    end.

-spec stop(term()) -> ok.
stop(_State) ->
    ok.
