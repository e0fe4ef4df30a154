# The same release with Nomad's native service discovery: no Consul at all.
# The service is registered in Nomad (provider = "nomad"); caravan watches
# GET /v1/service/hello-dist on the task API socket with a blocking query,
# authenticated by the task's workload identity (NOMAD_TOKEN).
#
# The release's sys.config then uses a Nomad source, e.g.
#   {caravan, [{clusters, [{hello, #{sources => [{nomad, #{service => "hello-dist",
#                                                         basename => "hello"}}]}}]}]}
# and NOMAD_ADDR / NOMAD_TOKEN / NOMAD_NAMESPACE come from the environment.
#
# The cookie comes from a Nomad variable:
#   nomad var put nomad/jobs/hello cookie="$(openssl rand -hex 32)"

job "hello" {
  datacenters = ["dc1"]

  group "hello" {
    count = 3

    network {
      port "dist" {}
    }

    service {
      name     = "hello-dist"
      port     = "dist"
      provider = "nomad"

      check {
        type     = "tcp"
        port     = "dist"
        interval = "5s"
        timeout  = "2s"
      }
    }

    task "hello" {
      driver = "exec"

      config {
        command = "local/hello/bin/hello"
        args    = ["foreground"]
      }

      artifact {
        source      = "https://artifacts.example.invalid/hello-0.1.0.tar.gz"
        destination = "local/hello"
      }

      # The task API socket and a token for it (Nomad 1.5+).
      identity {
        env = true
      }

      template {
        destination = "secrets/dist.env"
        env         = true
        data        = <<-EOT
          NODE_NAME=hello-{{ env "NOMAD_PORT_dist" }}@{{ env "NOMAD_IP_dist" }}
          ERL_DIST_PORT={{ env "NOMAD_PORT_dist" }}
          NOMAD_ADDR=unix://{{ env "NOMAD_SECRETS_DIR" }}/api.sock
          NOMAD_NAMESPACE={{ env "NOMAD_NAMESPACE" }}
          {{ with nomadVar "nomad/jobs/hello" }}RELEASE_COOKIE={{ .cookie }}{{ end }}
        EOT
      }

      resources {
        cpu    = 500
        memory = 256
      }
    }
  }
}
