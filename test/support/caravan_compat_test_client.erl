%%% The DNS client of Caravan 1.0.1's dns_strategy_test.exs (TestClient),
%%% in Erlang: a Caravan.DnsClient answering one fixed record, and the
%%% connect MFA that test used (connect_test/1), which records what it is
%%% asked to connect to so that the test can assert the name.
-module(caravan_compat_test_client).
-behaviour('Elixir.Caravan.DnsClient').

-export([get_nodes/1]).
-export([connect_test/1]).
-export([connected/0]).
-export([reset/0]).

-spec get_nodes(binary()) -> [{integer(), binary()}].
get_nodes(Name) when is_binary(Name) ->
    [{7000, <<"somenode.foo.example.net">>}].

%% @doc Records Node (in a public ETS table owned by a process that lives
%% until reset/0) and answers true, as the 1.0.1 test's connect_test did.
-spec connect_test(node()) -> true.
connect_test(Node) ->
    ensure_table(),
    ets:insert(?MODULE, {erlang:unique_integer([monotonic]), Node}),
    true.

-spec connected() -> [node()].
connected() ->
    ensure_table(),
    [N || {_, N} <- lists:sort(ets:tab2list(?MODULE))].

-spec reset() -> ok.
reset() ->
    case whereis(?MODULE) of
        undefined -> ok;
        Pid -> Ref = monitor(process, Pid), Pid ! stop,
               receive {'DOWN', Ref, _, _, _} -> ok after 5000 -> ok end
    end.

ensure_table() ->
    case ets:whereis(?MODULE) of
        undefined ->
            Self = self(),
            Pid = spawn(fun() ->
                                try register(?MODULE, self()) of
                                    true -> ets:new(?MODULE, [named_table, public, ordered_set]),
                                            Self ! {self(), ready},
                                            receive stop -> ok end
                                catch error:badarg -> Self ! {self(), ready}
                                end
                        end),
            receive {Pid, ready} -> ok after 5000 -> error(table_owner_stuck) end;
        _ ->
            ok
    end.
