%%% Test certificates made with openssl: a CA, and certificates it signs for
%%% 127.0.0.1 / ::1 / localhost (as IP and as DNS names: inet_tls_dist checks
%%% a node name's host as a DNS name even when it is an IP literal).
-module(caravan_test_tls).

-export([make/2]).

%% @doc Makes Dir/ca.pem (+ ca.key) and, for each Name, Dir/Name.pem and
%% Dir/Name.key. Returns a map of paths: #{ca => _, {cert, Name} => _,
%% {key, Name} => _}.
-spec make(file:filename(), [string()]) -> map().
make(Dir, Names) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    sh(Dir, "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=caravan-test-ca "
            "-keyout ca.key -out ca.pem"),
    sh(Dir, "printf 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:127.0.0.1,DNS:localhost\\n' "
            "> san.ext"),
    lists:foldl(
      fun(Name, Acc) ->
              sh(Dir, io_lib:format("openssl req -newkey rsa:2048 -nodes -subj /CN=~s "
                                    "-keyout ~s.key -out ~s.csr", [Name, Name, Name])),
              sh(Dir, io_lib:format("openssl x509 -req -in ~s.csr -CA ca.pem -CAkey ca.key "
                                    "-CAcreateserial -days 2 -extfile san.ext -out ~s.pem",
                                    [Name, Name])),
              Acc#{{cert, Name} => filename:join(Dir, Name ++ ".pem"),
                   {key, Name} => filename:join(Dir, Name ++ ".key")}
      end, #{ca => filename:join(Dir, "ca.pem")}, Names).

sh(Dir, Cmd) ->
    Out = os:cmd("cd " ++ Dir ++ " && " ++ lists:flatten(Cmd) ++ " 2>&1; echo rc=$?"),
    case lists:suffix("rc=0\n", Out) of
        true -> ok;
        false -> error({openssl_failed, lists:flatten(Cmd), Out})
    end.
