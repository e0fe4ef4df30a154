%%% Loaded into a bench node (bench/register_bench.escript): a watch on the
%%% registered service that timestamps every node leaving its listing.
-module(caravan_register_bench_node).

-export([watch/2]).
-export([departures/1]).

%% @doc Watches Service at Url; returns once the first answer came.
-spec watch(string(), string()) -> pid().
watch(Url, Service) ->
    Parent = self(),
    Pid = spawn(fun() ->
                        {ok, _} = caravan:watch({consul, #{service => Service, basename => "app",
                                                           url => Url, wait => 30000}}, self()),
                        receive {caravan_watch, _, {members, First}} -> Parent ! {self(), ready},
                                                                       loop(First, [])
                        after 10000 -> exit(no_answer)
                        end
                end),
    receive {Pid, ready} -> Pid after 10000 -> error(watch_stuck) end.

%% @doc [{Node, erlang:system_time(microsecond)}] of every node that left.
-spec departures(pid()) -> [{node(), integer()}].
departures(Pid) ->
    Pid ! {departures, self()},
    receive {Pid, D} -> D after 5000 -> error(watch_stuck) end.

loop(Members, Gone) ->
    receive
        {caravan_watch, _, {members, New}} ->
            T = erlang:system_time(microsecond),
            loop(New, [{N, T} || N <- Members -- New] ++ Gone);
        {caravan_watch, _, _} ->
            loop(Members, Gone);
        {departures, From} ->
            From ! {self(), lists:reverse(Gone)},
            loop(Members, Gone)
    end.
