%%% Captures every log event of this node, formatted as text, for tests
%%% that count log lines or search them (for a token that must not be
%%% there). A logger handler: start/0 adds it, stop/0 removes it and returns
%%% what it saw.
-module(caravan_test_log).

-export([start/0]).
-export([stop/0]).
-export([lines/0]).
-export([log/2]).

-define(ID, caravan_test_capture).
-define(TABLE, caravan_test_log_lines).

-spec start() -> ok.
start() ->
    Owner = spawn(fun() -> ets:new(?TABLE, [named_table, public, ordered_set]),
                           receive stop -> ok end end),
    wait_table(50),
    ok = logger:add_handler(?ID, ?MODULE, #{level => all, config => #{owner => Owner}}).

wait_table(0) -> error(no_table);
wait_table(N) ->
    case ets:info(?TABLE) of
        undefined -> timer:sleep(10), wait_table(N - 1);
        _ -> ok
    end.

%% @doc Every line captured so far.
-spec lines() -> [binary()].
lines() ->
    [L || {_, L} <- ets:tab2list(?TABLE)].

-spec stop() -> [binary()].
stop() ->
    Lines = lines(),
    {ok, #{config := #{owner := Owner}}} = logger:get_handler_config(?ID),
    ok = logger:remove_handler(?ID),
    Owner ! stop,
    Lines.

%% logger handler callback
-spec log(logger:log_event(), logger:handler_config()) -> ok.
log(Event, _Config) ->
    Text = iolist_to_binary(logger_formatter:format(Event, #{single_line => true,
                                                             template => [level, " ", msg, " ",
                                                                          {caravan, [caravan], []},
                                                                          "\n"]})),
    %% The table is gone once stop/0 ran: a late event is dropped.
    try ets:insert(?TABLE, {erlang:unique_integer([monotonic]), Text}) of
        true -> ok
    catch
        error:badarg -> ok
    end.
