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
%% the connections are dropped as a leave drops them (docs/global.md:
%% global:disconnect/0 where global would otherwise cascade, the members
%% one by one on OTP 25.0). All of it is caravan_cluster:leave_node/0.
%% IMPORTANT: before any of that, the node deregisters from the Consul agent
%% (caravan_register:deregister_all/0): peers watching the service see it
%% go first, and no check turns critical over connections already closed.
%% Stopping only the application
%% leaves connections as they are. A cluster that is gone before this runs
%% (libcluster's Cluster.Supervisor in an application that stops before
%% caravan) left by itself, in caravan_cluster's terminate/2.
-spec prep_stop(term()) -> term().
prep_stop(State) ->
    case init:get_status() of
        {stopping, _} ->
            _ = caravan_register:deregister_all(),
            _ = caravan_cluster:leave_node(),
            State;
        _ ->
            State
    end.

-spec stop(term()) -> ok.
stop(_State) ->
    ok.
