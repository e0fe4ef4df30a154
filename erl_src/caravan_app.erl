%%% @doc The caravan application: starts caravan_sup.
-module(caravan_app).
-behaviour(application).

-export([start/2]).
-export([prep_stop/1]).
-export([stop/1]).

-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_Type, _Args) ->
    caravan_sup:start_link().

%% @doc When the node itself is stopping, leave the cluster tidily. Clusters
%% tell their members and stop first, so nothing reconnects; then
%% global:disconnect/0 drops every connection without the lost_connection
%% messages that OTP 25's prevent_overlapping_partitions would otherwise
%% send: peers seeing this node go from some but not yet from others would
%% disconnect from each other. Stopping only the application leaves
%% connections as they are.
-spec prep_stop(term()) -> term().
prep_stop(State) ->
    case init:get_status() of
        {stopping, _} ->
            Clusters = caravan_cluster_sup:clusters(),
            %% Told first, the members do not redial a node on its way out.
            _ = [try caravan_cluster:announce_departure(C) catch _:_ -> ok end
                 || C <- Clusters],
            _ = [caravan_cluster_sup:stop_cluster(C) || C <- Clusters],
            _ = global:disconnect(),
            State;
        _ ->
            State
    end.

-spec stop(term()) -> ok.
stop(_State) ->
    ok.
