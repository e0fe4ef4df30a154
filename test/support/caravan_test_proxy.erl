%%% A recording HTTP proxy for tests of the proxy rule (issue 18 item 1), on
%%% loopback. It forwards nothing: every request it receives is recorded
%%% (request line and headers) and answered by the proxy itself, a plain GET
%%% with one Consul-shaped instance at 198.18.7.7:4370 (so a test sees from
%%% the answer that the proxy served it), a CONNECT (what an https:// URL
%%% sends through a proxy) with 403, which ends that request.
-module(caravan_test_proxy).

-export([start/0, stop/1, url/1, requests/1]).

-type proxy() :: #{pid := pid(), port := inet:port_number()}.
-type request() :: #{method := binary(), uri := binary(), headers := #{binary() => binary()}}.

%% @doc Starts a proxy on 127.0.0.1 and a free port.
-spec start() -> proxy().
start() ->
    Self = self(),
    Pid = spawn(fun() -> init(Self) end),
    receive
        {Pid, listening, Port} -> #{pid => Pid, port => Port}
    after 5000 -> error(proxy_not_started)
    end.

-spec stop(proxy()) -> ok.
stop(#{pid := Pid}) ->
    Ref = monitor(process, Pid),
    exit(Pid, kill),
    receive {'DOWN', Ref, _, _, _} -> ok end.

-spec url(proxy()) -> string().
url(#{port := Port}) -> "http://127.0.0.1:" ++ integer_to_list(Port).

%% @doc What reached the proxy, oldest first.
-spec requests(proxy()) -> [request()].
requests(#{pid := Pid}) ->
    Ref = make_ref(),
    Pid ! {requests, self(), Ref},
    receive {Ref, Rs} -> lists:reverse(Rs) after 5000 -> error(proxy_silent) end.

%%% internal

init(Parent) ->
    process_flag(trap_exit, true),
    {ok, L} = gen_tcp:listen(0, [binary, {packet, http_bin}, {active, false}, {reuseaddr, true},
                                 {ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(L),
    Self = self(),
    spawn_link(fun() -> accept(L, Self) end),
    Parent ! {self(), listening, Port},
    loop([]).

loop(Rs) ->
    receive
        {recorded, R} -> loop([R | Rs]);
        {requests, From, Ref} -> From ! {Ref, Rs}, loop(Rs);
        {'EXIT', _, _} -> loop(Rs)
    end.

accept(L, Recorder) ->
    case gen_tcp:accept(L) of
        {ok, S} ->
            Pid = spawn(fun() -> receive {go, Sock} -> serve(Sock, Recorder) end end),
            ok = gen_tcp:controlling_process(S, Pid),
            Pid ! {go, S},
            accept(L, Recorder);
        {error, _} ->
            ok
    end.

serve(S, Recorder) ->
    case gen_tcp:recv(S, 0, 10000) of
        {ok, {http_request, Method, Uri, _}} ->
            Headers = headers(S, #{}),
            M = if is_atom(Method) -> atom_to_binary(Method); true -> Method end,
            Recorder ! {recorded, #{method => M, uri => uri(Uri), headers => Headers}},
            _ = gen_tcp:send(S, answer(M)),
            gen_tcp:close(S);
        _ ->
            gen_tcp:close(S)
    end.

headers(S, H) ->
    ok = inet:setopts(S, [{packet, httph_bin}]),
    case gen_tcp:recv(S, 0, 10000) of
        {ok, {http_header, _, Name, _, Value}} ->
            Key = string:lowercase(if is_atom(Name) -> atom_to_binary(Name); true -> Name end),
            headers(S, H#{Key => Value});
        _ ->
            H
    end.

uri({absoluteURI, Scheme, Host, Port, Path}) ->
    iolist_to_binary([atom_to_binary(Scheme), "://", Host,
                      case Port of undefined -> ""; _ -> [":", integer_to_binary(Port)] end,
                      Path]);
uri({abs_path, Path}) -> Path;
uri({scheme, Host, Port}) -> <<Host/binary, ":", Port/binary>>; % CONNECT host:port
uri(Other) -> iolist_to_binary(io_lib:format("~p", [Other])).

answer(<<"CONNECT">>) ->
    <<"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n">>;
answer(_) ->
    Body = <<"[{\"Node\":{\"Node\":\"proxy\",\"Address\":\"198.18.7.7\"},"
             "\"Service\":{\"ID\":\"p\",\"Service\":\"app\",\"Address\":\"\",\"Port\":4370},"
             "\"Checks\":[]}]">>,
    [<<"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Consul-Index: 7\r\n"
       "Connection: close\r\nContent-Length: ">>, integer_to_binary(byte_size(Body)),
     <<"\r\n\r\n">>, Body].
