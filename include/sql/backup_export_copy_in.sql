copy {relation} from stdin
